"""Linear SGD probe against the L-BFGS optimum, fine-tuning networks against their source, result tables."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simclr.data import TensorImages
from simclr.errors import SimCLRError
from simclr.evaluate import (
    ResultRow,
    build_classifier,
    count_parameters,
    fit_linear_sgd,
    fit_logistic_regression,
    format_table,
    linear_sgd_evaluate,
    train_classifier,
    write_results,
)
from simclr.evaluate.classifier import CropFlipViews, Standardize, crop_flip
from simclr.evaluate.protocols import finetune_epochs
from simclr.models import build_simclr


@pytest.fixture(autouse=True)
def one_thread():
    """These problems are tiny: a second intra-op thread only adds contention on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blobs(rows_per_class=100):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3 * rows_per_class, 8)) + np.repeat(np.eye(3, 8) * 2, rows_per_class, axis=0)
    return torch.tensor(x, dtype=torch.float64), torch.tensor(np.repeat(np.arange(3), rows_per_class))


def _objective(x, y, weight, bias, mean, std, weight_decay):
    """The objective both solvers minimise: mean cross-entropy + wd/2 |W|^2 on standardised x."""
    return (F.cross_entropy(((x - mean) / std) @ weight.T + bias, y) + 0.5 * weight_decay * weight.square().sum()).item()


@pytest.mark.parametrize("batch_size, epochs, tolerance", [(300, 300, 1e-8), (64, 100, 1e-4)])
def test_sgd_probe_reaches_the_lbfgs_optimum(batch_size, epochs, tolerance):
    """Strictly convex problem: Nesterov SGD with cosine decay ends at L-BFGS's optimum (itself checked against scikit-learn)."""
    x, y = _blobs()
    wd = 1e-2
    w_ref, b_ref, mean, std = fit_logistic_regression(x, y, 3, wd, 1000)
    w, b, mean_sgd, std_sgd = fit_linear_sgd(x, y, 3, epochs, batch_size, base_lr=0.5, weight_decay=wd)
    torch.testing.assert_close(mean_sgd, mean) and torch.testing.assert_close(std_sgd, std)
    gap = _objective(x, y, w, b, mean, std, wd) - _objective(x, y, w_ref, b_ref, mean, std, wd)
    assert -1e-9 < gap < tolerance
    if batch_size == len(y):  # full batch: the weights themselves agree
        torch.testing.assert_close(w, w_ref, atol=1e-3, rtol=0)


def test_sgd_probe_separates_a_separable_problem_and_is_seeded():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 5, generator=g) * torch.tensor([1.0, 1.0, 50.0, 0.01, 1.0])  # scales the standardisation absorbs
    y = (x[:, 0] - x[:, 1] > 0.2).long()
    result = linear_sgd_evaluate(x[:300], y[:300], x[300:], y[300:], 2, epochs=90, batch_size=32)
    assert result["train_top1"] > 0.97 and result["top1"] > 0.95
    assert fit_linear_sgd(x, y, 2, 3, 32, seed=5)[0].equal(fit_linear_sgd(x, y, 2, 3, 32, seed=5)[0])
    assert not fit_linear_sgd(x, y, 2, 3, 32, seed=5)[0].equal(fit_linear_sgd(x, y, 2, 3, 32, seed=6)[0])


def _tiny_images(n=8, size=12):
    g = torch.Generator().manual_seed(0)
    return TensorImages(torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n) % 2)


def _model():
    torch.manual_seed(0)
    return build_simclr("resnet18", 0.125, cifar_stem=True, head="mlp", proj_layers=2, hidden_dim=24, out_dim=8)


def test_fine_tune_network_starts_from_the_pretrained_weights():
    model, data = _model(), _tiny_images()
    network = build_classifier(model, 2, from_head_layer=0)
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(network.encoder.state_dict()[name], value), name
    x = torch.rand(4, 3, 12, 12)
    model.eval(), network.eval()
    torch.testing.assert_close(network.features(x), model.encode(x), rtol=0, atol=0)
    # lr 0: the loop runs (BatchNorm statistics move) but no weight leaves the checkpoint's value.
    train_classifier(network, data, crop_flip(12, (0.5, 1.0), (0.75, 4 / 3), 0.5), 2, 4, 0.0, 0.0, 0, torch.device("cpu"))
    for name, value in model.encoder.named_parameters():
        assert torch.equal(dict(network.encoder.named_parameters())[name], value), name
    # a positive LR trains a copy: the source network is untouched
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = train_classifier(network, data, crop_flip(12, (0.5, 1.0), (0.75, 4 / 3), 0.5), 2, 4, 1.0, 0.0, 0, torch.device("cpu"))
    assert stats["steps"] == 4 and stats["peak_lr"] == 4 / 256
    assert not torch.equal(network.encoder.conv1.weight, model.encoder.conv1.weight)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_from_head_layer_keeps_the_first_head_layer_and_counts_its_parameters():
    model = _model()
    network = build_classifier(model, 10, from_head_layer=1)
    linear, norm = network.neck[0], network.neck[1]
    assert torch.equal(linear.weight, model.head.layers[0].weight) and torch.equal(norm.weight, model.head.layers[1].weight)
    assert network.fc.in_features == 24 and isinstance(network.neck[2], torch.nn.ReLU)
    d = model.feature_dim
    expected = count_parameters(model.encoder) + d * 24 + 2 * 24 + 24 * 10 + 10  # Linear (no bias), BN, classifier
    assert count_parameters(network) == expected
    assert network(torch.rand(3, 3, 12, 12)).shape == (3, 10)
    with pytest.raises(SimCLRError, match="from_head_layer must be in \\[0, 1\\]"):
        build_classifier(model, 10, from_head_layer=2)


def test_frozen_probe_trains_only_the_linear_layer():
    model, data = _model(), _tiny_images()
    neck = Standardize(torch.zeros(model.feature_dim), torch.ones(model.feature_dim))
    network = build_classifier(model, 2, frozen=True, neck=neck)
    encoder_before = {k: v.clone() for k, v in network.encoder.state_dict().items()}  # running stats included
    fc_before = network.fc.weight.clone()
    train_classifier(network, data, crop_flip(12, (0.5, 1.0), (0.75, 4 / 3), 0.5), 2, 4, 1.0, 0.0, 0, torch.device("cpu"))
    assert all(torch.equal(encoder_before[k], v) for k, v in network.encoder.state_dict().items())
    assert not torch.equal(network.fc.weight, fc_before)


def test_crop_flip_views_are_seeded_per_sample_and_colourless():
    view = crop_flip(12, (0.3, 1.0), (0.75, 4 / 3), 0.5)
    assert (view.color_p, view.gray_p, view.blur_p, view.solarize_p) == (0.0, 0.0, 0.0, 0.0)
    views = CropFlipViews(_tiny_images(n=8), view, seed=3)
    first = views[1][0]
    assert torch.equal(first, views[1][0]) and not torch.equal(first, views[2][0])
    assert not torch.equal(first, views[8 + 1][0])  # the same image in the next epoch
    assert views[8 + 1][1] == views[1][1]


def test_paper_fine_tuning_budgets():
    assert (finetune_epochs(0.01, None), finetune_epochs(0.1, None), finetune_epochs(1.0, None)) == (60, 30, 30)
    assert finetune_epochs(0.01, 7) == 7


def test_results_table_and_json(tmp_path):
    rows = [
        ResultRow("finetune", "SimCLR", 0.9, 0.99, 0.01, 60, 1_234_567, 40, 3.0),
        ResultRow("knn", "SimCLR", 0.8, 0.95, 1.0, None, 1_000_000, 4000, 1.0),
        ResultRow("supervised", "none (from scratch)", 0.5, 0.9, 0.01, 60, 1_234_567, 40, 2.0),
    ]
    assert format_table(rows).splitlines()[2:] == [
        "| supervised baseline, 1% labels | none (from scratch) | 50.00% | 90.00% | 0.01 | 60 | 1.235 M |",
        "| kNN (no fine-tuning) | SimCLR | 80.00% | 95.00% | 1 | — | 1.000 M |",
        "| fine-tune, 1% labels | SimCLR | 90.00% | 99.00% | 0.01 | 60 | 1.235 M |",
    ]
    markdown, data = write_results(tmp_path / "out", rows, {"data": "mnist5k"})
    assert "- data: mnist5k" in markdown.read_text() and format_table(rows) in markdown.read_text()
    saved = json.loads(data.read_text())
    assert saved["data"] == "mnist5k" and [r["method"] for r in saved["rows"]] == [
        "supervised baseline, 1% labels", "kNN (no fine-tuning)", "fine-tune, 1% labels"]
    assert saved["rows"][2]["params"] == 1_234_567 and saved["rows"][1]["epochs"] is None

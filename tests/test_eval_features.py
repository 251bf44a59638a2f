"""Linear evaluation and kNN on any layer: ``--features h|head1|z`` against probes computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS, make_image_folder

from simclr.augment import EvalTransform
from simclr.cli.main import main
from simclr.evaluate import extract_features
from simclr.evaluate.classifier import feature_layers, feature_neck
from simclr.evaluate.knn import knn_evaluate
from simclr.evaluate.linear_sgd import linear_sgd_evaluate
from simclr.evaluate.run import labelled_data
from simclr.models import build_simclr
from simclr.runs import load_run_config, load_run_model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("features")
    run = root / "run"
    images = make_image_folder(root / "images", per_class=13)
    assert main(["pretrain", "--data", str(images), "--output", str(run), *TINY_ARGS, "--max-steps", "2", "--proj-layers", "3"]) == 0
    return run


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _by_hand(run: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(train, train labels, test, test labels) of h, of the head's first hidden layer and of z, from the network itself."""
    config = load_run_config(run)
    data = labelled_data(config)
    model, _ = load_run_model(config, run, data)
    model.eval()
    out = {}
    with torch.no_grad():
        for split in ("train", "test"):
            dataset = getattr(data, split)
            images = torch.stack([EvalTransform(config.data.image_size)(dataset[i][0]) for i in range(len(dataset))])
            labels = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
            h, z = model(images)
            out[split] = {"h": h, "head1": model.head.layers[:3](h), "z": z, "labels": labels}
    return {name: (out["train"][name], out["train"]["labels"], out["test"][name], out["test"]["labels"]) for name in ("h", "head1", "z")}


@pytest.mark.parametrize("layer", ["z", "head1"])
def test_linear_eval_and_knn_on_a_layer_equal_probes_computed_by_hand(tiny_run: Path, layer: str, capsys: pytest.CaptureFixture[str]) -> None:
    features = _by_hand(tiny_run)[layer]
    assert main(["linear-eval", str(tiny_run), "--features", layer, "--linear-epochs", "3", "--json"]) == 0
    linear = _last_json(capsys)
    want = linear_sgd_evaluate(*features, 2, epochs=3, batch_size=256, base_lr=0.1, weight_decay=0.0, seed=3)
    assert linear["features"] == layer == linear["details"]["features"]
    assert linear["top1"] == pytest.approx(want["top1"]) and linear["details"]["train_top1"] == pytest.approx(want["train_top1"])
    assert main(["knn", str(tiny_run), "--features", layer, "--k", "5", "--json"]) == 0
    knn = _last_json(capsys)
    assert knn["features"] == layer and knn["top1"] == pytest.approx(knn_evaluate(*features, 2, k=5, temperature=0.1)["top1"])


def test_z_differs_from_h_and_has_the_heads_width(tiny_run: Path) -> None:
    hand = _by_hand(tiny_run)
    assert hand["z"][0].shape[1] == 128 and not torch.equal(hand["z"][0][:, :16], hand["h"][0][:, :16])


def test_evaluate_writes_the_layer_into_the_results(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tiny_run), "--protocols", "linear,knn", "--features", "z", "--linear-epochs", "2",
                 "--output", str(tmp_path), "--json"]) == 0
    rows = _last_json(capsys)["rows"]
    assert {row["details"]["features"] for row in rows} == {"z"} and all(row["encoder"] == "SimCLR (z)" for row in rows)


def test_a_layer_the_head_does_not_have_is_one_line(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["linear-eval", str(tiny_run), "--features", "head3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: eval.features must be one of h, head1, head2, z for model.head=mlp with model.proj_layers=3, got 'head3'")


def test_feature_layers_follow_the_head() -> None:
    assert feature_layers(build_simclr("resnet18", 0.125, True, "mlp", 3)) == ("h", "head1", "head2", "z")
    assert feature_layers(build_simclr("resnet18", 0.125, True, "linear")) == ("h", "z")
    model = build_simclr("resnet18", 0.125, True, "none").eval()
    h = torch.randn(4, model.feature_dim)
    assert torch.equal(feature_neck(model, "z")(h), h)


def test_the_default_reads_h(tiny_run: Path) -> None:
    config = load_run_config(tiny_run)
    data = labelled_data(config)
    model, _ = load_run_model(config, tiny_run, data)
    h, _ = extract_features(model, data.test, config.data.image_size, torch.device("cpu"))
    torch.testing.assert_close(h, _by_hand(tiny_run)["h"][2], rtol=1e-5, atol=1e-5)

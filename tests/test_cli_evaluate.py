"""`simclr evaluate`, `finetune`, `supervised` and `linear-eval --solver` end to end on tiny data."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS, make_image_folder

from simclr.cli.main import main
from simclr.evaluate import build_classifier, count_parameters
from simclr.evaluate.run import labelled_data
from simclr.runs import load_run_config, load_run_model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One 2-step pretraining on 2 classes x 10 training images (16 px), shared by this file's tests."""
    root = tmp_path_factory.mktemp("evaluate")
    images = make_image_folder(root / "images", per_class=13)  # 10 train + 3 test per class
    run = root / "run"
    assert main(["pretrain", "--data", str(images), "--output", str(run), *TINY_ARGS, "--max-steps", "2"]) == 0
    return run


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_evaluate_runs_every_protocol_and_writes_the_table(tiny_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(tiny_run), "--label-fractions", "0.5,1", "--epochs", "1", "--linear-epochs", "3",
                 "--batch-size", "4", "--json"]) == 0
    printed = last_json(capsys.readouterr().out)
    saved = json.loads((tiny_run / "results.json").read_text())
    assert printed["rows"] == saved["rows"] and printed["results_md"] == str(tiny_run / "results.md")
    rows = {(r["protocol"], r["label_fraction"]): r for r in saved["rows"]}
    assert [r["method"] for r in saved["rows"]] == [
        "supervised baseline, 50% labels", "supervised baseline, 100% labels", "linear (no fine-tuning)",
        "kNN (no fine-tuning)", "fine-tune, 50% labels", "fine-tune, 100% labels"]
    for r in saved["rows"]:
        assert 0.0 <= r["top1"] <= r["top5"] <= 1.0
    # the same class-balanced subset for both end-to-end protocols: 5 of each class's 10 at 50 %
    for fraction, size in [(0.5, 10), (1.0, 20)]:
        assert rows["finetune", fraction]["train_size"] == rows["supervised", fraction]["train_size"] == size
        assert rows["finetune", fraction]["epochs"] == 1 and rows["finetune", fraction]["details"]["steps"] == size // 4
    assert rows["linear", 1.0]["epochs"] == 3 and rows["knn", 1.0]["epochs"] is None
    assert rows["linear", 1.0]["details"]["views"] == "cached"  # auto on the CPU: the cached-features fast path
    # parameters: encoder (kNN), + a 64-d -> 2-class linear layer (linear, fine-tune, supervised)
    encoder = rows["knn", 1.0]["params"]
    assert rows["linear", 1.0]["params"] == rows["finetune", 1.0]["params"] == rows["supervised", 0.5]["params"] == encoder + 64 * 2 + 2
    table = (tiny_run / "results.md").read_text()
    assert "| method | encoder | top-1 | top-5 | label fraction | epochs | parameters |" in table
    assert "| fine-tune, 50% labels | SimCLR |" in table and "| supervised baseline, 100% labels | none (from scratch) |" in table


def test_finetune_from_the_first_head_layer(tiny_run, capsys):
    capsys.readouterr()
    assert main(["finetune", str(tiny_run), "--label-fraction", "0.5", "--from-head-layer", "1", "--epochs", "1", "--json"]) == 0
    (row,) = last_json(capsys.readouterr().out)["rows"]
    assert (row["protocol"], row["label_fraction"], row["train_size"], row["details"]["from_head_layer"]) == ("finetune", 0.5, 10, 1)
    # encoder + the head's first layer (64x64 Linear without bias, BatchNorm) + a 64 -> 2 classifier
    config = load_run_config(tiny_run)
    model, _ = load_run_model(config, tiny_run, labelled_data(config))
    assert row["params"] == count_parameters(model.encoder) + 64 * 64 + 2 * 64 + 64 * 2 + 2


def test_finetune_network_holds_the_checkpoint_weights(tiny_run):
    config = load_run_config(tiny_run)
    model, source = load_run_model(config, tiny_run, labelled_data(config))
    saved = torch.load(next((tiny_run / "checkpoints").iterdir()), weights_only=True)["model"]
    network = build_classifier(model, 2, from_head_layer=1)
    for name, value in network.encoder.state_dict().items():
        assert torch.equal(value, saved[f"encoder.{name}"]), name
    assert torch.equal(network.neck[0].weight, saved["head.layers.0.weight"]) and "step 2" in source


def test_supervised_command_writes_results(tiny_run, tmp_path, capsys):
    images = make_image_folder(tmp_path / "images", per_class=8)
    out = tmp_path / "supervised"
    capsys.readouterr()
    assert main(["supervised", "--data", str(images), "--arch", "resnet18", "--width", "0.125", "--label-fraction", "1",
                 "--epochs", "2", "--batch-size", "6", "--workers", "0", "--seed", "1", "--output", str(out), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    (row,) = result["rows"]
    assert (row["protocol"], row["encoder"], row["epochs"], row["train_size"]) == ("supervised", "none (from scratch)", 2, 12)
    assert row["details"]["steps"] == 4 and "resnet18, width 0.125, CIFAR stem" in result["model"]
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
    assert "supervised baseline, 100% labels" in (out / "results.md").read_text()


@pytest.mark.parametrize("solver, views", [("sgd", "cached"), ("sgd", "augmented"), ("lbfgs", "auto")])
def test_linear_eval_solver_choice(tiny_run, solver, views, capsys):
    capsys.readouterr()
    assert main(["linear-eval", str(tiny_run), "--solver", solver, "--linear-views", views, "--linear-epochs", "2", "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["details"]["solver"] == solver and result["protocol"] == "linear"
    assert result["epochs"] == (2 if solver == "sgd" else None) and result["details"].get("views", "auto") == views
    assert result["details"]["weight_decay"] == (0.0 if solver == "sgd" else 1e-4)
    if views == "augmented":  # crop+flip views through the frozen encoder: 20 images in one batch a step
        assert result["details"]["steps"] == 2


@pytest.mark.parametrize("argv, words", [
    (["evaluate", "--protocols", "linear,probe"], "unknown protocol 'probe'"),
    (["evaluate", "--label-fractions", "0.1,0"], "eval.label_fractions must be in (0, 1], got 0"),
    (["evaluate", "--solver", "adam"], "eval.linear_solver must be one of sgd, lbfgs"),
    (["finetune", "--from-head-layer", "2"], "eval.from_head_layer must be in [0, 1]"),
    (["finetune", "--epochs", "0"], "eval.finetune_epochs must be >= 1"),
    (["finetune", "--set", "eval.finetune_lr=-1"], "eval.finetune_lr must be > 0"),
    (["finetune", "--lr", "fast"], "option eval.finetune_lr expects float, got 'fast'"),
])
def test_bad_options_end_in_one_line(tiny_run, argv, words, capsys):
    capsys.readouterr()
    assert main([argv[0], str(tiny_run), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


@pytest.mark.parametrize("command", ["evaluate", "finetune", "supervised"])
def test_new_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: simclr " + command in capsys.readouterr().out


def test_demo_writes_the_shared_results_format(tmp_path, capsys):
    images = make_image_folder(tmp_path / "images", per_class=8)
    run = tmp_path / "demo"
    assert main(["demo", "--data", str(images), "--output", str(run), "--width", "0.125", "--batch-size", "8",
                 "--max-steps", "1", "--workers", "0", "--knn-every", "0"]) == 0
    saved = json.loads((run / "results.json").read_text())
    assert [(r["method"], r["encoder"]) for r in saved["rows"]] == [
        ("linear (no fine-tuning)", "SimCLR"), ("linear (no fine-tuning)", "random init"),
        ("kNN (no fine-tuning)", "SimCLR"), ("kNN (no fine-tuning)", "random init")]
    assert "pretraining" in saved and "| linear (no fine-tuning) | random init |" in (run / "results.md").read_text()
    out = capsys.readouterr().out
    assert "| kNN (no fine-tuning) | SimCLR |" in out
    # The demo ends with the run report, its path printed, the results table inside it.
    assert f"report: {run / 'report.html'}" in out
    assert "random init" in (run / "report.html").read_text()

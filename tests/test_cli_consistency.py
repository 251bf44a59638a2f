"""One command line: --version, --seed wherever something is trained or sampled, one spelling per option, help from the registries."""

import argparse
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS, make_image_folder

import simclr.evaluate.run as evaluate_run_module
from simclr import __version__
from simclr.cli.main import build_parser, main
from simclr.config import available_presets
from simclr.models import ARCHITECTURES, HEADS
from simclr.optim import OPTIMIZERS


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("consistency")
    images = make_image_folder(root / "images", per_class=13)
    run = root / "run"
    assert main(["pretrain", "--data", str(images), "--output", str(run), *TINY_ARGS, "--max-steps", "2"]) == 0
    return run


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_version_names_the_distribution(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"simclr-torch {__version__} (torch ")


@pytest.mark.parametrize("command", ["pretrain", "demo", "linear-eval", "knn", "finetune", "supervised", "evaluate", "study"])
def test_every_command_that_trains_or_samples_takes_seed(command):
    assert "--seed" in _flags(_subcommands()[command])


def test_one_spelling_per_option():
    commands = _subcommands()
    for name, parser in commands.items():
        flags = _flags(parser)
        assert "--out" not in flags or "--output" in flags, f"{name}: --out without --output"
        positionals = {action.dest for action in parser._actions if not action.option_strings}
        if "run" in positionals:  # every command on a run folder: another checkpoint, and a machine-readable result
            assert {"--checkpoint", "--json"} <= flags, name
    for name in ("pretrain", "demo", "finetune", "evaluate", "supervised"):
        assert "--batch-size" in _flags(commands[name])


def test_help_lists_the_registries(capsys):
    commands = _subcommands()
    pretrain = "".join(commands["pretrain"].format_help().split())  # argparse wraps lines, even at hyphens
    for name in (*ARCHITECTURES, *OPTIMIZERS, *HEADS, *available_presets()):
        assert name in pretrain, name
    supervised = "".join(commands["supervised"].format_help().split())
    assert "|".join(ARCHITECTURES) in supervised and ",".join(available_presets()) in supervised


def _result(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _loss(result: dict) -> float:
    """The last epoch's training loss: it moves with the order, the views and the initialisation."""
    rows = result.get("rows") or [result]
    return rows[0]["details"]["last_epoch_loss"]


SEEDED = {
    "linear-eval": ["linear-eval", "{run}", "--linear-views", "augmented", "--linear-epochs", "1", "--set", "eval.linear_batch_size=4"],
    "finetune": ["finetune", "{run}", "--label-fraction", "0.5", "--epochs", "1", "--batch-size", "4"],
    "evaluate": ["evaluate", "{run}", "--protocols", "finetune", "--label-fractions", "0.5", "--epochs", "1", "--batch-size", "4", "--output", "{out}"],
    "supervised": ["supervised", "--data", "{images}", "--arch", "resnet18", "--width", "0.125", "--label-fraction", "0.5",
                   "--epochs", "1", "--batch-size", "4", "--workers", "0"],
}


@pytest.mark.parametrize("command", list(SEEDED))
def test_seed_changes_the_result_and_the_same_seed_reproduces_it(command, tiny_run, tmp_path, capsys, one_thread):
    argv = [a.format(run=tiny_run, out=tmp_path, images=tiny_run.parent / "images") for a in SEEDED[command]]
    first, again, other = (_loss(_result(capsys, [*argv, "--seed", seed])) for seed in ("1", "1", "2"))
    assert first == again
    assert first != other


def test_knn_seed_draws_the_random_encoder(tiny_run, monkeypatch, capsys, one_thread):
    """kNN trains nothing: --seed reaches the one thing it samples, the --random-init encoder."""
    seen: list[torch.Tensor] = []
    original = evaluate_run_module.run_protocols

    def spy(model, *args, **kwargs):
        seen.append(model.encoder.conv1.weight.detach().clone())
        return original(model, *args, **kwargs)

    monkeypatch.setattr(evaluate_run_module, "run_protocols", spy)
    for seed in ("1", "1", "2"):
        assert _result(capsys, ["knn", str(tiny_run), "--random-init", "--seed", seed])["protocol"] == "knn"
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


def test_output_is_spelled_alike_for_files_and_folders(tiny_run, tmp_path, capsys):
    out = tmp_path / "encoder.safetensors"
    result = _result(capsys, ["export", str(tiny_run), "--output", str(out)])
    assert result["file"] == str(out) and out.is_file() and result["feature_dim"] == 64

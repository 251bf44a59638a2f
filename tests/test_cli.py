"""The command line end to end on tiny data: files written, JSON printed, errors on one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simclr.cli.main import main
from simclr.train.metrics import read_metrics

from conftest import TINY_ARGS


def pretrain(data: Path, run: Path, *extra: str) -> int:
    return main(["pretrain", "--data", str(data), "--output", str(run), *TINY_ARGS, *extra])


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_pretrain_linear_eval_knn_through_cli(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert pretrain(tiny_folder, run, "--max-steps", "3") == 0
    for name in ["config.yaml", "metrics.jsonl", "augmentations.png", "plots/loss.png", "plots/lr.png", "plots/accuracy.png"]:
        assert (run / name).is_file(), name
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000003.pt"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"step", "epoch", "loss", "lr", "contrastive_acc", "probe_acc"} <= rows[0].keys()
    capsys.readouterr()

    for command in ("linear-eval", "knn"):
        assert main([command, str(run), "--json"]) == 0
        result = last_json(capsys.readouterr().out)
        assert 0.0 <= result["top1"] <= result["top5"] <= 1.0
        assert "step 3" in result["encoder"]
    assert main(["knn", str(run), "--json", "--random-init", "--k", "5"]) == 0
    assert last_json(capsys.readouterr().out)["encoder"] == "random init"


def test_resume_continues_at_saved_step_and_matches_uninterrupted(tiny_folder, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert pretrain(tiny_folder, straight, "--max-steps", "4") == 0
    assert pretrain(tiny_folder, resumed, "--max-steps", "2") == 0
    assert main(["pretrain", "--output", str(resumed), "--resume", "--max-steps", "4"]) == 0
    assert [r["step"] for r in read_metrics(resumed / "metrics.jsonl")] == [1, 2, 3, 4]
    a = torch.load(straight / "checkpoints" / "step-00000004.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "step-00000004.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    losses = lambda run: [r["loss"] for r in read_metrics(run / "metrics.jsonl")]  # noqa: E731
    assert losses(straight) == losses(resumed)


def test_fresh_run_refuses_to_overwrite_checkpoints(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert pretrain(tiny_folder, run, "--max-steps", "1") == 0
    assert pretrain(tiny_folder, run, "--max-steps", "1") == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_with_other_architecture_is_refused(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert pretrain(tiny_folder, run, "--max-steps", "1") == 0
    capsys.readouterr()
    assert main(["pretrain", "--output", str(run), "--resume", "--arch", "resnet34"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.arch" in err and "resnet34" in err and len(err.splitlines()) == 1


def test_seed_flag_aliases_are_accepted(tiny_folder, tmp_path):
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tiny_folder), "--output", str(run), *TINY_ARGS,
                 "--batch_size", "6", "--out_dim", "16", "--num_worker", "0", "--valid_size", "0.25", "--lr", "0.1", "--max-steps", "1"]) == 0
    saved = (run / "config.yaml").read_text()
    for fragment in ["batch_size: 6", "out_dim: 16", "workers: 0", "valid_size: 0.25", "lr: 0.1"]:
        assert fragment in saved


@pytest.mark.parametrize("command", ["pretrain", "linear-eval", "knn", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: simclr " + command in capsys.readouterr().out


def test_error_reaches_user_without_traceback(tmp_path):
    """A real subprocess: exit status 2, one line on stderr, no Python traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "simclr", "pretrain", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: data path '{tmp_path / 'missing'}' does not exist"] or "does not exist" in result.stderr

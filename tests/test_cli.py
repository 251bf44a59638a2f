"""The command line end to end on tiny data: files written, JSON printed, errors on one line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from simclr.cli.main import main
from simclr.config import Config, load_preset
from simclr.runs import load_run_config
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


def test_resume_mid_epoch_matches_uninterrupted_bitwise(tiny_folder, tmp_path):
    """Batch 4 over 20 images: 5 steps an epoch. Resume at step 3 (mid-epoch) and run to 7."""
    common = ["--batch-size", "4", "--max-steps", "7", "--checkpoint-every", "3"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert pretrain(tiny_folder, straight, *common) == 0
    assert pretrain(tiny_folder, resumed, *common) == 0
    # As if killed after step 5: the checkpoints of steps 6 and 7 never happened.
    for step in (6, 7):
        (resumed / "checkpoints" / f"step-{step:08d}.pt").unlink()
    assert main(["pretrain", "--output", str(resumed), "--resume"]) == 0

    rows = read_metrics(resumed / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]  # rows past step 3 were dropped, then rewritten
    assert [r["loss"] for r in rows] == [r["loss"] for r in read_metrics(straight / "metrics.jsonl")]
    a = torch.load(straight / "checkpoints" / "step-00000007.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "step-00000007.pt", weights_only=True)
    for part in ("model", "probe"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for index, buffers in a["optimizer"]["state"].items():
        assert torch.equal(buffers["momentum_buffer"], b["optimizer"]["state"][index]["momentum_buffer"])


def test_mixed_precision_channels_last_clipping_and_knn_monitor(tiny_folder, tmp_path):
    run = tmp_path / "run"
    assert pretrain(tiny_folder, run, "--max-steps", "2", "--precision", "bf16", "--channels-last",
                    "--grad-clip", "1.0", "--knn-every", "1") == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["knn_top1"] for r in rows if "knn_top1" in r] and all(
        torch.isfinite(torch.tensor(r["loss"])) for r in rows if "loss" in r)
    # The kNN row of epoch 1 comes before the step-2 checkpoint, which holds finite weights.
    state = torch.load(run / "checkpoints" / "step-00000002.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_may_not_change_the_batch_size(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert pretrain(tiny_folder, run, "--max-steps", "1") == 0
    capsys.readouterr()
    assert main(["pretrain", "--output", str(run), "--resume", "--batch-size", "4"]) == 2
    assert "train.batch_size: 8 in checkpoint vs 4 now" in capsys.readouterr().err


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
    assert result.stderr.strip().splitlines() == [f"error: data path '{tmp_path / 'missing'}' does not exist"]


@pytest.mark.parametrize("preset", ["demo", "cifar10-resnet18", "stl10-resnet18", "imagenet-resnet50"])
def test_every_preset_trains_a_step_on_tiny_data(preset, tiny_folder, tmp_path):
    """Each shipped preset, shrunk (width, size, batch) but otherwise as written, runs and evaluates."""
    run = tmp_path / preset
    assert main(["pretrain", "--preset", preset, "--data", str(tiny_folder), "--output", str(run),
                 "--width", "0.125", "--image-size", "32", "--batch-size", "4", "--max-steps", "1",
                 "--workers", "0", "--knn-every", "0"]) == 0
    # The run used the preset's own values where no option overrode them.
    expected = Config()
    load_preset(expected, preset)
    saved = load_run_config(run)
    assert (saved.train.temperature, saved.optim.lr, saved.model.out_dim) == (
        expected.train.temperature, expected.optim.lr, expected.model.out_dim)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000001.pt"]
    assert main(["knn", str(run), "--k", "3"]) == 0


def test_batched_and_per_image_pipelines_train_alike(tiny_folder, tmp_path):
    """Same keys give the same augmentation parameters in both pipelines. In memory only float
    rounding of the rendering differs; from a folder the batched loader also rounds its crops to
    uint8 (half a level), so the first losses agree closely, and a little less closely."""
    for data, tolerance in ((str(tiny_folder), 5e-3), ("mnist5k", 1e-4)):
        losses = {}
        for pipeline in ("batched", "per_image"):
            run = tmp_path / f"{pipeline}-{Path(data).name}"
            args = ["--data", data, "--output", str(run), *TINY_ARGS, "--max-steps", "2", "--set", f"augment.pipeline={pipeline}"]
            assert main(["pretrain", *args]) == 0
            assert load_run_config(run).augment.pipeline == pipeline
            losses[pipeline] = [row["loss"] for row in read_metrics(run / "metrics.jsonl")]
        assert losses["batched"][0] == pytest.approx(losses["per_image"][0], rel=tolerance)
        assert losses["batched"][1] == pytest.approx(losses["per_image"][1], rel=10 * tolerance)


def test_auto_pipeline_is_batched_for_in_memory_images(tmp_path):
    def run_mnist(run: Path, steps: int) -> int:
        args = ["--data", "mnist5k", "--output", str(run), *TINY_ARGS, "--batch-size", "16", "--max-steps", str(steps)]
        return main(["pretrain", *args])

    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    assert run_mnist(resumed, 2) == 0
    assert load_run_config(resumed).augment.pipeline == "batched"
    # A mid-epoch resume of the batched pipeline is bitwise equal to the uninterrupted run.
    assert run_mnist(straight, 3) == 0
    assert main(["pretrain", "--output", str(resumed), "--resume", "--max-steps", "3"]) == 0
    a = torch.load(resumed / "checkpoints" / "step-00000003.pt", weights_only=True)
    b = torch.load(straight / "checkpoints" / "step-00000003.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_folder_of_mixed_sizes_trains_batched_with_a_worker_and_resumes_bitwise(tmp_path):
    """JPEGs and PNGs of many sizes and modes (one sideways phone photo) through the batched path
    with a persistent loader worker, across epochs; a resumed run ends with the same weights."""
    from PIL import Image

    rng = np.random.default_rng(1)
    folder = tmp_path / "photos"
    folder.mkdir()
    sizes = [(30, 40), (64, 48), (17, 90), (40, 40), (25, 33), (50, 20), (33, 61), (90, 17), (45, 45), (20, 70)]
    for i, (h, w) in enumerate(sizes):
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(["RGB", "L", "RGBA"][i % 3])
        exif = Image.Exif()
        exif[0x0112] = 6 if i == 0 else 1
        if i % 3 == 2:
            image.save(folder / f"{i}.png")
        else:
            image.save(folder / f"{i}.jpg", exif=exif)
    args = ["--data", str(folder), *TINY_ARGS, "--batch-size", "4", "--epochs", "3", "--workers", "1", "--image-size", "24"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["pretrain", "--output", str(straight), *args, "--max-steps", "5"]) == 0  # 2 steps an epoch
    assert load_run_config(straight).augment.pipeline == "batched"
    assert main(["pretrain", "--output", str(resumed), *args, "--max-steps", "3"]) == 0
    assert main(["pretrain", "--output", str(resumed), "--resume", "--max-steps", "5"]) == 0
    a = torch.load(resumed / "checkpoints" / "step-00000005.pt", weights_only=True)
    b = torch.load(straight / "checkpoints" / "step-00000005.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key

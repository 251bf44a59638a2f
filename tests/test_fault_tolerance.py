"""Kill-anywhere resume, preemption and NaN stops, on real ``simclr pretrain`` subprocesses.

Every run trains the same tiny model on the same 20 images (batch 4: 5 steps an epoch,
3 epochs, 15 steps, a checkpoint every 4 steps). A run is killed at a chosen point, resumed
with ``--resume``, and must end with exactly the weights, optimizer state and per-step
losses of one uninterrupted reference run. The moment to kill is found by polling files
the run writes, never by sleeping a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_image_folder

from simclr.train.metrics import read_metrics

STEPS = 15
ARGS = [
    "--arch", "resnet18", "--width", "0.125", "--batch-size", "4", "--epochs", "3", "--warmup-epochs", "1",
    "--workers", "0", "--knn-every", "0", "--seed", "3", "--device", "cpu", "--checkpoint-every", "4",
    "--set", "train.log_every=1",
]

# Runs the CLI with test-only hooks, driven by environment variables:
#   FT_PROGRESS: file that gets one line per finished step (written before the step is
#     counted, logged or checkpointed);
#   FT_PAUSE_AFTER_STEP=k: after step k, touch FT_PROGRESS.paused and hang;
#   FT_PAUSE_IN_SAVE=k: write half of checkpoint k's temp file, touch the marker and hang;
#   FT_STEP_SLEEP=s: sleep s seconds after every step (a window for outside signals).
# The hooks only observe and wait: the computation is the one the plain CLI does.
HARNESS = r"""
import io, os, sys, time
import torch
import simclr.train.trainer as trainer
from simclr.cli.main import main

progress = os.environ.get("FT_PROGRESS", "")
pause_step = int(os.environ.get("FT_PAUSE_AFTER_STEP", "0"))
save_step = int(os.environ.get("FT_PAUSE_IN_SAVE", "0"))
step_sleep = float(os.environ.get("FT_STEP_SLEEP", "0"))

def hang():
    open(progress + ".paused", "w").close()
    while True:
        time.sleep(60)

real_step = trainer.train_step
def train_step(state, *args, **kwargs):
    out = real_step(state, *args, **kwargs)
    if progress:
        with open(progress, "a") as handle:
            handle.write(f"{state.step + 1}\n")
    if state.step + 1 == pause_step:
        hang()
    time.sleep(step_sleep)
    return out
trainer.train_step = train_step

real_save = torch.save
def save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and "format" in obj and obj.get("step") == save_step:
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        hang()
    return real_save(obj, f, *args, **kwargs)
torch.save = save

sys.exit(main(sys.argv[1:]))
"""


def _env(**hooks: Any) -> dict[str, str]:
    # One thread everywhere: the reference and every resumed run reduce in the same order.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update({key: str(value) for key, value in hooks.items()})
    return env


def _start(argv: list[str], log: Path, **hooks: Any) -> subprocess.Popen:
    """The harness running ``simclr <argv>``; stdout/stderr go to ``log``.out/.err files."""
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, *argv],
        stdout=open(log.with_suffix(".out"), "w"), stderr=open(log.with_suffix(".err"), "w"),
        env=_env(**hooks), cwd=log.parent,
    )


def _finish(process: subprocess.Popen, log: Path, timeout: float = 240) -> tuple[int, str, str]:
    code = process.wait(timeout=timeout)
    return code, log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()


def _train(run: Path, data: Path | None, log: Path, *extra: str, **hooks: Any) -> tuple[int, str, str]:
    """Run to completion: a fresh run with ``data``, or ``--resume`` when ``data`` is None."""
    argv = ["pretrain", "--output", str(run), *(["--data", str(data), *ARGS] if data else ["--resume"]), *extra]
    return _finish(_start(argv, log, **hooks), log)


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Poll ``ready`` every 10 ms; fail with the run's stderr if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"the run ended (or hung) before the kill point:\n{log.with_suffix('.err').read_text()[-3000:]}")
        time.sleep(0.01)


def _steps_done(progress: Path) -> int:
    return len(progress.read_text().split()) if progress.exists() else 0


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))


def _tensors(value: Any, name: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a nested checkpoint structure, with a path naming it."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _tensors(value[key], f"{name}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{name}/{index}")


def _final_state(run: Path) -> dict[str, Any]:
    return torch.load(run / "checkpoints" / f"step-{STEPS:08d}.pt", weights_only=True)


def _assert_same_as_reference(run: Path, reference: Path) -> None:
    """Bitwise-equal final weights and optimizer state, and one metrics row per step 1..N with equal losses."""
    ours, theirs = _final_state(run), _final_state(reference)
    for part in ("model", "probe", "optimizer"):
        mine, expected = dict(_tensors(ours[part])), dict(_tensors(theirs[part]))
        assert mine.keys() == expected.keys() and mine, part
        for key, tensor in expected.items():
            assert torch.equal(mine[key], tensor), f"{part}{key} differs from the uninterrupted run"
    rows = [row for row in read_metrics(run / "metrics.jsonl") if "loss" in row]
    assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
    reference_rows = [row for row in read_metrics(reference / "metrics.jsonl") if "loss" in row]
    assert [row["loss"] for row in rows] == [row["loss"] for row in reference_rows]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault")
    make_image_folder(root / "images", classes=2, per_class=12)  # 20 images in the train split
    return root


@pytest.fixture(scope="module")
def reference(work: Path) -> Path:
    """One uninterrupted run, shared by every comparison."""
    run = work / "reference"
    code, _, err = _train(run, work / "images", work / "reference.log")
    assert code == 0, err[-3000:]
    assert _checkpoints(run)[-1] == f"step-{STEPS:08d}.pt"
    return run


def test_sigkill_mid_epoch_then_resume_matches(work: Path, reference: Path) -> None:
    """Killed after step 7 (epoch 2, third step); the newest checkpoint is step 4 (also mid-epoch)."""
    run, log, progress = work / "mid", work / "mid.log", work / "mid.progress"
    process = _start(["pretrain", "--output", str(run), "--data", str(work / "images"), *ARGS], log,
                     FT_PROGRESS=progress, FT_PAUSE_AFTER_STEP=7)
    _wait_for(lambda: Path(f"{progress}.paused").exists(), process, log)
    _kill(process)
    assert _checkpoints(run) == ["step-00000004.pt"]
    code, _, err = _train(run, None, work / "mid-resume.log")
    assert code == 0, err[-3000:]
    assert "resuming from" in err and "step-00000004.pt" in err
    _assert_same_as_reference(run, reference)


def test_sigkill_just_after_a_checkpoint_then_resume_matches(work: Path, reference: Path) -> None:
    """Killed the moment step 8's checkpoint appears (wherever the process then is)."""
    run, log = work / "after", work / "after.log"
    process = _start(["pretrain", "--output", str(run), "--data", str(work / "images"), *ARGS], log, FT_STEP_SLEEP=0.2)
    _wait_for(lambda: (run / "checkpoints" / "step-00000008.pt").exists(), process, log)
    _kill(process)
    assert "step-00000008.pt" in _checkpoints(run) and f"step-{STEPS:08d}.pt" not in _checkpoints(run)
    code, _, err = _train(run, None, work / "after-resume.log")
    assert code == 0, err[-3000:]
    _assert_same_as_reference(run, reference)


def test_sigkill_during_a_checkpoint_write_then_resume_matches(work: Path, reference: Path) -> None:
    """Killed with half of step 8's checkpoint in its temp file: step 4 is the newest real one."""
    run, log, progress = work / "writing", work / "writing.log", work / "writing.progress"
    process = _start(["pretrain", "--output", str(run), "--data", str(work / "images"), *ARGS], log,
                     FT_PROGRESS=progress, FT_PAUSE_IN_SAVE=8)
    _wait_for(lambda: Path(f"{progress}.paused").exists(), process, log)
    _kill(process)
    partial = list((run / "checkpoints").glob(".step-00000008.pt.tmp-*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    assert _checkpoints(run) == ["step-00000004.pt"]
    code, _, err = _train(run, None, work / "writing-resume.log")
    assert code == 0, err[-3000:]
    _assert_same_as_reference(run, reference)
    assert not list((run / "checkpoints").glob(".step-*.tmp-*"))  # the next save cleared the torn file


def test_sigkill_before_the_first_checkpoint_then_resume_starts_afresh(work: Path, reference: Path) -> None:
    """Nothing to continue yet: --resume warns and runs from step 0, ending like the reference."""
    run, log, progress = work / "early", work / "early.log", work / "early.progress"
    process = _start(["pretrain", "--output", str(run), "--data", str(work / "images"), *ARGS], log,
                     FT_PROGRESS=progress, FT_PAUSE_AFTER_STEP=2)
    _wait_for(lambda: Path(f"{progress}.paused").exists(), process, log)
    _kill(process)
    assert _checkpoints(run) == []
    code, _, err = _train(run, None, work / "early-resume.log")
    assert code == 0, err[-3000:]
    assert "starting the run from step 0" in err
    _assert_same_as_reference(run, reference)


def test_damaged_newest_checkpoint_falls_back_and_still_matches(work: Path, reference: Path) -> None:
    """The reference run as if killed after step 12's checkpoint, which then got truncated."""
    run = work / "damaged"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.jsonl"):
        (run / name).write_bytes((reference / name).read_bytes())
    for step in (8, 12):
        name = f"step-{step:08d}.pt"
        (run / "checkpoints" / name).write_bytes((reference / "checkpoints" / name).read_bytes())
    newest = run / "checkpoints" / "step-00000012.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    code, _, err = _train(run, None, work / "damaged.log")
    assert code == 0, err[-3000:]
    assert "skipping damaged checkpoint" in err and "step-00000008.pt" in err
    assert (run / "checkpoints" / "step-00000012.pt.damaged").exists()
    _assert_same_as_reference(run, reference)


@pytest.mark.parametrize("name, expected_code", [("SIGTERM", 0), ("SIGINT", 130)])
def test_signal_saves_a_checkpoint_and_exits_cleanly(name: str, expected_code: int, work: Path, reference: Path) -> None:
    """The loop stops at a step boundary, checkpoints that step and says how to resume."""
    run, log, progress = work / name, work / f"{name}.log", work / f"{name}.progress"
    process = _start(["pretrain", "--output", str(run), "--data", str(work / "images"), *ARGS], log,
                     FT_PROGRESS=progress, FT_STEP_SLEEP=0.2)
    _wait_for(lambda: _steps_done(progress) >= 6, process, log)
    process.send_signal(getattr(signal, name))
    code, out, err = _finish(process, log)
    assert code == expected_code, err[-3000:]
    assert "Traceback" not in err
    match = re.search(rf"stopped by {name} at step (\d+), checkpoint saved; resume with: "
                      rf"simclr pretrain --output {re.escape(str(run))} --resume", out)
    assert match, out
    stopped = int(match.group(1))
    assert 6 <= stopped < STEPS and stopped == _steps_done(progress)
    assert _checkpoints(run)[-1] == f"step-{stopped:08d}.pt"
    assert [row["step"] for row in read_metrics(run / "metrics.jsonl")] == list(range(1, stopped + 1))
    if name == "SIGTERM":  # one resume is enough to show the checkpoint is a faithful one
        code, _, err = _train(run, None, work / f"{name}-resume.log")
        assert code == 0, err[-3000:]
        _assert_same_as_reference(run, reference)


def test_nan_loss_stops_with_the_step_and_keeps_good_checkpoints(work: Path) -> None:
    """SGD at lr 1e12 without warm-up diverges within a few steps; every step is checkpointed."""
    run, log = work / "nan", work / "nan.log"
    code, _, err = _train(run, work / "images", log, "--optimizer", "sgd", "--lr", "1e12",
                            "--warmup-epochs", "0", "--checkpoint-every", "1", "--set", "train.keep_checkpoints=20")
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err[-3000:]
    # The loss of step s is computed before s's update, so the weights may break one step before it.
    match = re.match(r"error: (?:the )?(?:loss|weights) became \S+ (?:at|after) step (\d+): the learning rate may be too high", errors[0])
    assert match, errors[0]
    bad = int(match.group(1))
    assert str(run / "checkpoints") in errors[0]
    kept = _checkpoints(run)
    assert kept == [f"step-{step:08d}.pt" for step in range(1, bad)]  # everything before it, nothing after
    for name in kept:  # a kept checkpoint is one a resume can continue from
        state = torch.load(run / "checkpoints" / name, weights_only=True)
        assert all(torch.isfinite(t).all() for _, t in _tensors(state["model"]) if t.is_floating_point()), name

"""--time-budget: the schedule is sized to end inside the budget; measuring leaves no trace; short runs of presets work."""

import logging
import time
from pathlib import Path

import pytest
import torch
import yaml

from simclr import distributed
from simclr.cli.main import build_parser, main
from simclr.cli.options import config_from_args
from simclr.errors import SimCLRError
from simclr.train.budget import Costs, Pacer, measure_costs, plan_steps
from simclr.train.metrics import read_metrics
from simclr.train.setup import build_run
from simclr.train.trainer import pretrain

TINY = ["--arch", "resnet18", "--width", "0.125", "--batch-size", "8", "--workers", "0", "--knn-every", "0", "--seed", "3"]


def _config(folder: Path, output: Path, *extra: str):
    return config_from_args(build_parser().parse_args(["pretrain", "--data", str(folder), "--output", str(output), *TINY, *extra]))


def test_plan_counts_every_cost_and_refuses_a_budget_too_short():
    costs = Costs(step=0.5, first_batch=2.0, save=1.0, knn=4.0)
    # 100 s - 10 s spent - 2 s to the first batch - 1 s final save - (3 s + 3 s) margin = 81 s; a step 0.5 + 1/10 + 4/(2*5).
    assert plan_steps(100.0, 10.0, costs, steps_per_epoch=5, checkpoint_every=10, knn_every=2) == 81
    assert plan_steps(100.0, 10.0, costs, steps_per_epoch=5, checkpoint_every=10, knn_every=0) == int(81 / 0.6)
    with pytest.raises(SimCLRError, match="train.time_budget of 10 s is too short"):
        plan_steps(10.0, 8.0, costs, 5, 10, 0)


def test_measuring_leaves_the_state_exactly_as_it_was(tiny_folder, tmp_path, one_thread):
    config = _config(tiny_folder, tmp_path / "run", "--epochs", "3")
    with distributed.session("cpu") as process:
        run = build_run(config, False, process)
        before = run.state.state_dict(run.config)
        costs = measure_costs(run, budget_seconds=1000.0)
        after = run.state.state_dict(run.config)
    assert costs.step > 0 and costs.first_batch > 0 and costs.save > 0
    assert after["step"] == before["step"] == 0 and after["optimizer"]["state"] == {}
    for name, tensor in before["model"].items():
        assert torch.equal(tensor, after["model"][name]), name
    assert not list((tmp_path / "run" / "checkpoints").glob("*"))  # the timed write was removed


def test_a_budgeted_run_ends_inside_the_budget_with_its_schedule_completed(tiny_folder, tmp_path, one_thread):
    budget = 20.0
    started = time.perf_counter()
    summary = pretrain(_config(tiny_folder, tmp_path / "run", "--time-budget", "20s"))
    seconds = time.perf_counter() - started
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]
    assert seconds <= budget, f"took {seconds:.1f} s"
    assert summary["stopped_by"] is None and summary["steps"] == saved["total_steps"] > 3
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    steps = [row for row in rows if "loss" in row]
    assert steps[-1]["step"] == saved["total_steps"] and steps[-1]["lr"] < 0.05 * max(row["lr"] for row in steps)  # cosine ran out
    assert saved["epochs"] == -(-saved["total_steps"] // 2)  # 20 images (a fifth of 24 held out), batch 8: 2 steps an epoch


def test_a_budgeted_run_resumes_its_own_schedule(tiny_folder, tmp_path, one_thread):
    first = pretrain(_config(tiny_folder, tmp_path / "run", "--time-budget", "15s", "--max-steps", "2"))
    total = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["total_steps"]
    assert first["steps"] == 2 and total > 2
    args = build_parser().parse_args(["pretrain", "--output", str(tmp_path / "run"), "--resume", "--set", "train.max_steps=none"])
    from simclr.cli.options import resume_base

    resumed = pretrain(config_from_args(args, resume_base(args)), resume=True)
    assert resumed["steps"] == total  # measured once, when the run started


def test_short_run_of_a_preset_shortens_its_warm_up_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="simclr"):
        code = main(["pretrain", "--preset", "demo", "--epochs", "1", "--max-steps", "1", "--output", str(tmp_path / "run"),
                     "--width", "0.0625", "--knn-every", "0"])
    assert code == 0
    assert "optim.warmup_epochs 3 is longer than the 1-epoch schedule: shortened to 0.1" in caplog.text  # the demo preset's 3
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["optim"]["warmup_epochs"] == 0.1


def test_a_warm_up_inside_the_schedule_is_kept(tiny_folder, tmp_path, one_thread, caplog):
    with caplog.at_level(logging.WARNING, logger="simclr"):
        pretrain(_config(tiny_folder, tmp_path / "run", "--epochs", "2", "--warmup-epochs", "2", "--max-steps", "1"))
    assert "shortened" not in caplog.text
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["optim"]["warmup_epochs"] == 2.0


def test_pacer_resizes_the_schedule_to_the_loops_own_pace():
    now = time.perf_counter()
    pacer = Pacer(deadline=now + 10.0, first_step=0, limit=400)
    pacer.started = now - 5.0  # 50 steps in 5 s: 0.1 s a step, 10 s left
    assert pacer.replan(50, planned=100) == pytest.approx(150, abs=1)  # faster than planned: longer
    assert pacer.replan(50, planned=149) == 149  # within 2 %: kept
    assert pacer.replan(50, planned=1000) == pytest.approx(150, abs=1)  # slower than planned: shorter
    assert pacer.replan(3, planned=100) == 100  # too few steps to judge
    late = Pacer(deadline=now - 1.0, first_step=0, limit=400)
    late.started = now - 5.0
    assert late.replan(50, planned=100) == 50  # past the deadline: stop now
    quick = Pacer(deadline=now + 1000.0, first_step=0, limit=400)
    quick.started = now - 5.0
    assert quick.replan(50, planned=100) == 400  # never beyond the batches the loader was asked for

"""The per-step breakdown of ``simclr bench``: the split step trains like ``train_step``; the row adds up."""

from __future__ import annotations

import pickle

import pytest
import torch

from simclr import distributed
from simclr.benchmark.breakdown import PARTS, PartTimer, TimedTransform, bench_step_breakdown, format_breakdown, timed_train_step
from simclr.benchmark.pretrain import bench_config, synthetic_data
from simclr.runs import build_augmentation
from simclr.train.loader import PretrainBatches
from simclr.train.setup import build_train_state
from simclr.train.step import train_step


@pytest.mark.parametrize("grad_clip", [None, 0.5])
def test_the_split_step_makes_the_same_update_as_train_step(one_thread, grad_clip: float | None) -> None:
    config = bench_config("resnet18", 0.125, 16, 8)
    config.optim.grad_clip = grad_clip
    data = synthetic_data(24, 16)
    process = distributed.Process(0, 1, 0, 1, torch.device("cpu"))
    states = [build_train_state(config, data, process, None) for _ in range(2)]
    timer = PartTimer(torch.device("cpu"))
    batches = PretrainBatches(data.pretrain, build_augmentation(config), 0, 8, "batched", 0, torch.device("cpu"))
    for batch in batches.iterate(0, 3):
        plain, split = train_step(states[0], batch), timed_train_step(states[1], batch, timer)
        assert plain.keys() == split.keys() == {"loss", "contrastive_acc", "probe_acc"}
        for key in plain:
            torch.testing.assert_close(split[key], plain[key], rtol=1e-6, atol=1e-7)
    after = [dict(state.model.state_dict()) | {f"probe.{k}": v for k, v in state.probe.state_dict().items()} for state in states]
    assert after[0].keys() == after[1].keys()
    for key in after[0]:
        torch.testing.assert_close(after[1][key], after[0][key], rtol=1e-5, atol=1e-6, msg=key)
    moved = build_train_state(config, data, process, None).model.state_dict()
    assert not torch.equal(moved["encoder.conv1.weight"], after[0]["encoder.conv1.weight"])  # it trained
    assert timer.seconds["forward_backward"] > 0 and timer.seconds["loss"] > 0 and timer.seconds["optimizer"] > 0


class Double:
    size = 7

    def __call__(self, x: int) -> int:
        return 2 * x

    def from_crops(self, x: int) -> int:
        return 3 * x


def test_timed_transform_times_calls_delegates_and_travels_to_loader_workers() -> None:
    timer = PartTimer(torch.device("cpu"))
    timed = TimedTransform(Double(), timer)
    assert timed(2) == 4 and timed.from_crops(2) == 6 and timed.size == 7
    assert timer.seconds["augment"] > 0 and set(timer.seconds) == set(PARTS)
    copy = pickle.loads(pickle.dumps(timed))
    assert copy(5) == 10 and copy.size == 7


def test_breakdown_row_has_every_part_and_the_shares_add_up(one_thread) -> None:
    row = bench_step_breakdown("resnet18", 0.125, 16, 8, "cpu", steps=2, warmup=1)
    assert row["benchmark"] == "step_breakdown" and row["pipeline"] == "batched"
    parts = [row[f"{name}_ms"] for name in PARTS]
    assert all(value >= 0 for value in parts) and row["forward_backward_ms"] > 0 and row["logging_ms"] > 0
    assert row["step_ms"] == pytest.approx(sum(parts), abs=0.05)
    assert sum(row[f"{name}_pct"] for name in PARTS) == pytest.approx(100, abs=0.5)
    assert row["train_step_ms"] > 0 and "synchronised" in row["method"]
    text = format_breakdown(row)
    assert all(name in text for name in PARTS) and "method:" in text


def test_a_compiled_network_builds_a_train_state() -> None:
    """train.compile wraps the network in torch.compile (compiling lazily, at the first step); the state takes it."""
    config = bench_config("resnet18", 0.125, 16, 8, compile_model=True)
    state = build_train_state(config, synthetic_data(8, 16), distributed.Process(0, 1, 0, 1, torch.device("cpu")), None)
    assert type(state.network).__name__ == "OptimizedModule" and state.network._orig_mod.model is state.model

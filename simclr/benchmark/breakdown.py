"""Where a pretraining step's time goes: data wait, augmentation, forward+backward, loss, optimizer, logging.

The step is ``simclr.train.step.train_step`` cut at its seams: the network's output is detached
so that NT-Xent (and the online probe's cross-entropy) run forward and backward on their own,
and their gradient is then sent back through the network, which gives the same gradients as
the one backward of ``train_step`` (a test checks the update). Each part is timed with the
wall clock, the device synchronised before and after it (CUDA), so its kernels are counted in
it and not in the next part; the synchronisation itself costs some overlap, which is why
``train_step_ms`` (the same steps run unsplit, synchronised only at the end) is reported too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from simclr import distributed
from simclr.benchmark.pretrain import arch_label, bench_config, synthetic_data
from simclr.benchmark.results import device_name
from simclr.loss import nt_xent
from simclr.optim import set_lr
from simclr.runs import build_augmentation, resolve_precision
from simclr.train.loader import PretrainBatches, resolve_pipeline
from simclr.train.metrics import MetricsLogger
from simclr.train.setup import build_train_state
from simclr.train.step import Batch, StepStats, TrainState, autocast, probe_loss, train_step

__all__ = ["PARTS", "PartTimer", "bench_step_breakdown", "timed_train_step"]

PARTS = ("data_wait", "augment", "forward_backward", "loss", "optimizer", "logging")
METHOD = ("wall clock per part; on CUDA the device is synchronised before and after each part; "
          "augment = views rendered in the training process (in loader workers they count as data_wait); "
          "logging = queueing each step's scalars plus one read-and-write of the rows per train.log_every steps; "
          "percentages of the sum of the parts")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PartTimer:
    """Seconds spent in each named part of a step, summed over the steps timed so far."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = dict.fromkeys(PARTS, 0.0)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time the block as part ``name``, the device synchronised on both sides."""
        _synchronize(self.device)
        started = time.perf_counter()
        try:
            yield
        finally:
            _synchronize(self.device)
            self.seconds[name] += time.perf_counter() - started

    def reset(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)


class TimedTransform:
    """Stands in for a ``PretrainBatches``' two-view transform and times its calls as ``augment``."""

    def __init__(self, transform: Any, timer: PartTimer) -> None:
        self.transform, self.timer = transform, timer

    def __call__(self, *args: Any) -> Any:
        with self.timer.part("augment"):
            return self.transform(*args)

    def from_crops(self, *args: Any) -> Any:
        with self.timer.part("augment"):
            return self.transform.from_crops(*args)

    def __getattr__(self, name: str) -> Any:  # sizes, views, crop sampling: the wrapped transform's
        if name in ("transform", "timer"):  # not set yet (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.transform, name)


def timed_train_step(state: TrainState, batch: Batch, timer: PartTimer) -> dict[str, Tensor]:
    """``train_step`` (one process) with its network, loss and optimizer parts timed apart."""
    view_a, view_b, labels = batch
    s, device = state.settings, next(state.model.parameters()).device
    with timer.part("optimizer"):
        state.optimizer.zero_grad(set_to_none=True)
    with timer.part("forward_backward"):
        images = torch.cat([view_a, view_b]).to(device, non_blocking=True)
        if s.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, s.amp_dtype):
            _, z, logits = state.network(images)  # type: ignore[misc]
    with timer.part("loss"):
        outputs, leaves = [z], [z.detach().requires_grad_()]
        out = nt_xent(*leaves[0].chunk(2), s.temperature, chunk_rows=s.loss_chunk_rows)
        stats, loss = {"loss": out.loss.detach(), "contrastive_acc": out.accuracy}, out.loss
        if logits is not None:
            outputs.append(logits)
            leaves.append(logits.detach().requires_grad_())
            probe, stats["probe_acc"] = probe_loss(leaves[1].float(), labels.to(device, non_blocking=True).repeat(2))
            loss = loss + probe
        grads = torch.autograd.grad(state.scaler.scale(loss), leaves)
    with timer.part("forward_backward"):
        torch.autograd.backward(outputs, grads)
    with timer.part("optimizer"):
        if s.grad_clip is not None:
            state.scaler.unscale_(state.optimizer)
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), s.grad_clip)
        state.scaler.step(state.optimizer)
        state.scaler.update()
    return stats


class _Logging:
    """What the training loop does per step to report: queue the scalars; every ``log_every`` steps read them
    (a host sync) and write them to ``metrics.jsonl`` and TensorBoard."""

    def __init__(self, folder: Path, log_every: int) -> None:
        self.pending, self.log_every, self.steps = StepStats(), log_every, 0
        folder.mkdir(parents=True, exist_ok=True)
        self.logger = MetricsLogger(folder)

    def add(self, stats: dict[str, Tensor]) -> bool:
        """Queue a step's scalars; whether the rows are due to be written now."""
        self.steps += 1
        self.pending.add(self.steps, 0, 0.1, stats)
        return self.steps % self.log_every == 0

    def write(self) -> None:
        for row in self.pending.drain():
            self.logger.log(row)
        self.logger.flush()


def _run_steps(state: TrainState, batches: PretrainBatches, steps: int, warmup: int, timer: PartTimer | None,
               log: _Logging) -> float:
    """Seconds of the last ``steps`` of ``warmup + steps``: split and timed by part, or (no timer) unsplit.

    Split, the writes of logged rows are timed on their own and counted once per ``log_every`` steps
    (one write is made at the end if none fell among the timed steps).
    """
    iterator, started, writes = batches.iterate(0, warmup + steps), 0.0, []
    for step in range(warmup + steps):
        if step == warmup:
            _synchronize(batches.device)
            started, writes = time.perf_counter(), []
            if timer:
                timer.reset()
        if timer is None:
            stats = train_step(state, next(iterator))
            set_lr(state.optimizer, 0.1)
            if log.add(stats):
                log.write()
            continue
        augment_before = timer.seconds["augment"]
        with timer.part("data_wait"):
            batch = next(iterator)
        timer.seconds["data_wait"] -= timer.seconds["augment"] - augment_before  # rendered inside next()
        stats = timed_train_step(state, batch, timer)
        with timer.part("optimizer"):
            set_lr(state.optimizer, 0.1)
        with timer.part("logging"):
            due = log.add(stats)
        if due or (step == warmup + steps - 1 and not writes):
            before = timer.seconds["logging"]
            with timer.part("logging"):
                log.write()
            writes.append(timer.seconds["logging"] - before)
            timer.seconds["logging"] = before
    _synchronize(batches.device)
    if timer:
        timer.seconds["logging"] += sum(writes) / len(writes) * steps / log.log_every
    return time.perf_counter() - started


def bench_step_breakdown(arch: str, width: float, image_size: int, batch_size: int, device: str, precision: str = "fp32",
                         pipeline: str = "auto", workers: int = 0, steps: int = 8, warmup: int = 2,
                         channels_last: bool = False, compile_model: bool = False) -> dict[str, object]:
    """One row: ms per step and share of the step for each part in ``PARTS``, and the unsplit ``train_step_ms``."""
    target = torch.device(device)
    config = bench_config(arch, width, image_size, batch_size, pipeline, workers, channels_last, compile_model)
    data = synthetic_data(batch_size * (steps + warmup), image_size)
    amp_dtype, timer = resolve_precision(precision, target), PartTimer(target)
    ms = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, part_timer in (("unsplit", None), ("split", timer)):  # the same seeded state and batches for both
            state = build_train_state(config, data, distributed.Process(0, 1, 0, 1, target), amp_dtype)
            batches = PretrainBatches(data.pretrain, build_augmentation(config), 0, batch_size, config.augment.pipeline,
                                      workers, target)
            batches.transform = TimedTransform(batches.transform, timer)
            log = _Logging(Path(folder) / name, config.train.log_every)
            ms[name] = _run_steps(state, batches, steps, warmup, part_timer, log) / steps * 1000
            log.logger.close()
    parts = {name: seconds / steps * 1000 for name, seconds in timer.seconds.items()}
    total = sum(parts.values())
    row: dict[str, object] = {
        "benchmark": "step_breakdown", "device": device_name(target), "arch": arch_label(arch, width),
        "image_size": image_size, "batch_size": batch_size, "precision": precision, "pipeline": resolve_pipeline(pipeline),
        "threads": torch.get_num_threads(), "workers": workers, "channels_last": channels_last, "compile": compile_model,
        "steps": steps, "step_ms": round(total, 2), "train_step_ms": round(ms["unsplit"], 2),
    }
    for name, value in parts.items():
        row[f"{name}_ms"], row[f"{name}_pct"] = round(value, 2), round(100 * value / total, 1)
    row["method"] = METHOD
    return row


def format_breakdown(row: dict[str, Any]) -> str:
    """A few lines for a person: each part's ms per step and share, the method, and the unsplit step."""
    lines = [f"step breakdown: {row['arch']} {row['image_size']} px, batch {row['batch_size']}, {row['precision']}, "
             f"{row['device']} ({row['workers']} loader workers)"]
    lines += [f"  {name:<17}{row[f'{name}_ms']:>10.2f} ms {row[f'{name}_pct']:>6.1f} %" for name in PARTS]
    lines.append(f"  {'sum of parts':<17}{row['step_ms']:>10.2f} ms; unsplit train_step: {row['train_step_ms']:.2f} ms")
    lines.append(f"  method: {row['method']}")
    return os.linesep.join(lines)

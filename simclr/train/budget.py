"""``train.time_budget``: a schedule sized to end, final checkpoint written, inside a wall time.

Before the first real step the run times a few steps of its own (on its own data, model and
optimizer; the state is restored afterwards, so training starts exactly as without them), one
checkpoint write, and estimates a kNN monitor from the step. The schedule's length (warm-up and cosine decay
included) is then what fits the time left, less a margin. Under ``torchrun`` every process
measures and rank 0's plan is used by all.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass

import torch

from simclr import checkpoint as ckpt
from simclr import distributed
from simclr.errors import SimCLRError
from simclr.optim import set_lr
from simclr.train.step import train_step

log = logging.getLogger("simclr")
TIMED_STEPS = (3, 8)  # at least / at most this many steps are timed, after one untimed first step
CALIBRATION_SHARE = 0.05  # stop timing more steps once calibration has used this share of the budget
MARGIN_SHARE, MARGIN_SECONDS = 0.03, 3.0  # kept free for what the measurements miss, and the plots after the last checkpoint
KNN_STEP_SHARE = 0.5  # a kNN monitor's forward over 2B images, in training steps


@dataclass(frozen=True)
class Costs:
    """Seconds measured on this run: a steady step, the loader's start to the first batch, a checkpoint write, a kNN monitor."""

    step: float
    first_batch: float
    save: float
    knn: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_costs(run, budget_seconds: float) -> Costs:  # noqa: ANN001 (a ``Run``; typed loosely to avoid an import cycle)
    """Time real steps, and a checkpoint write on ``run``, then restore its state exactly."""
    state, device = run.state, run.process.device
    snapshot = copy.deepcopy(state.state_dict(run.config))
    times, started = [], time.perf_counter()
    low, high = TIMED_STEPS
    batches = run.batches.iterate(0, high + 1)
    for batch in batches:
        set_lr(state.optimizer, 0.0)
        train_step(state, batch)
        _sync(device)
        times.append(time.perf_counter() - started - sum(times))
        # Every process must take the same number of steps (each is a collective): rank-wide decision.
        enough = len(times) > low and time.perf_counter() - started > CALIBRATION_SHARE * budget_seconds
        if distributed.any_rank(enough, device):
            break
    del batches  # stops the loader's workers
    save = _time_save(snapshot, run.run_dir / "checkpoints")
    state.load_state_dict(snapshot)
    steady = sum(times[1:]) / len(times[1:]) if len(times) > 1 else times[0]  # the mean: periodic costs count
    return Costs(step=steady, first_batch=times[0], save=save, knn=_knn_estimate(run, steady))


def _time_save(snapshot: dict, directory) -> float:  # noqa: ANN001
    started = time.perf_counter()
    if distributed.is_main():
        probe = directory / f".budget-probe-{os.getpid()}.pt"
        ckpt.atomic_save(snapshot, probe)
        probe.unlink(missing_ok=True)
    return time.perf_counter() - started


def _knn_estimate(run, step_seconds: float) -> float:  # noqa: ANN001
    """A kNN monitor's seconds: one forward pass over the train and test splits, at half a training step per 2B images.

    (A step is a forward and a backward over 2B views, about three forwards; half is kept for the search and loading.)
    """
    if not run.config.train.knn_every or run.data.test is None or run.data.train is None:
        return 0.0
    images = len(run.data.train) + len(run.data.test)
    return KNN_STEP_SHARE * step_seconds * images / (2 * run.config.train.batch_size)


def plan_steps(budget_seconds: float, elapsed: float, costs: Costs, steps_per_epoch: int, checkpoint_every: int, knn_every: int) -> int:
    """The schedule's length in steps: what fits in the budget after ``elapsed`` seconds, with every cost counted.

    Raises:
        SimCLRError: not even one step fits.
    """
    left = budget_seconds - elapsed - costs.first_batch - costs.save - MARGIN_SHARE * budget_seconds - MARGIN_SECONDS
    per_step = costs.step + costs.save / checkpoint_every
    if knn_every:
        per_step += costs.knn / (knn_every * steps_per_epoch)
    steps = math.floor(left / per_step)
    if steps < 1:
        raise SimCLRError(f"train.time_budget of {budget_seconds:g} s is too short: {elapsed:.1f} s went to loading and measuring, "
                          f"and a step takes {costs.step:.2f} s here (with {costs.first_batch:.1f} s to start the loader)")
    return steps


def fit_schedule(run, budget_seconds: float, started: float) -> tuple[int, float]:  # noqa: ANN001
    """Measure ``run``: the schedule's length in steps that ends inside ``budget_seconds`` from ``started``, and a checkpoint's write time."""
    costs = measure_costs(run, budget_seconds)
    t = run.config.train
    steps = plan_steps(budget_seconds, time.perf_counter() - started, costs, run.steps_per_epoch, t.checkpoint_every, t.knn_every)
    steps = distributed.broadcast_object(steps)
    log.info("time budget %g s: a step takes %.3f s, the loader starts in %.2f s, a checkpoint %.2f s, a kNN monitor %.2f s; "
             "the schedule is %d steps (%.2f epochs)", budget_seconds, costs.step, costs.first_batch, costs.save, costs.knn,
             steps, steps / run.steps_per_epoch)
    return steps, costs.save


class Pacer:
    """Keeps a budgeted run inside its deadline: the loop's own pace corrects the planned schedule's length.

    The first steps' measurement can be off (a machine that gets busier, caches, a loader that
    falls behind); every ``log_every`` steps the run's pace so far re-sizes the cosine's length
    to what is left (the warm-up stays). Changes under 2 % are ignored, so the LR curve stays
    smooth when the plan was right.
    """

    MIN_STEPS, TOLERANCE = 5, 0.02

    def __init__(self, deadline: float, first_step: int, limit: int) -> None:
        self.deadline, self.first_step, self.limit = deadline, first_step, limit
        self.started = time.perf_counter()

    def start(self) -> None:
        """The loop begins: pace is counted from here."""
        self.started = time.perf_counter()

    def replan(self, step: int, planned: int) -> int:
        """The schedule's length in steps after ``step`` steps (``planned`` unless the pace says otherwise); the same on every process."""
        done, now = step - self.first_step, time.perf_counter()
        total = planned
        if done >= self.MIN_STEPS:
            fit = step + math.floor((self.deadline - now) / ((now - self.started) / done))
            if abs(fit - planned) > self.TOLERANCE * planned:
                total = min(max(step, fit), self.limit)
        return distributed.broadcast_object(total)

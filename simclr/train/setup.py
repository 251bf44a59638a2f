"""Building a pretraining run from a ``Config``: run folder checks, data, state, resume and output files."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simclr import checkpoint as ckpt
from simclr import distributed
from simclr.augment import TwoViewTransform
from simclr.config import Config, parse_duration, save_config
from simclr.data import DataSplits
from simclr.errors import SimCLRError
from simclr.optim import build_optimizer, parameter_groups, warmup_cosine_lr
from simclr.report.grid import save_augmentation_grid
from simclr.runs import build_augmentation, build_model, check_same_model, check_same_training, load_config_data
from simclr.recipe import WARMUP_FRACTION, apply_choices, describe, measure_data, warmup_choice
from simclr.runs import peak_lr, resolve_precision, resolve_with_recipe
from simclr.train.budget import MARGIN_SECONDS, MARGIN_SHARE, Pacer, fit_schedule
from simclr.train.loader import PretrainBatches, resolve_pipeline
from simclr.train.metrics import MetricsLogger
from simclr.train.step import StepSettings, TrainState, WithProbe

log = logging.getLogger("simclr")


@dataclass
class Run:
    """A pretraining run ready for the loop; the step counts follow from the config and the data."""

    config: Config  # resolved: what the run folder's config.yaml says
    process: distributed.Process
    data: DataSplits
    state: TrainState
    batches: PretrainBatches  # this process's (view_a, view_b, labels) of any range of steps
    logger: MetricsLogger | None  # rank 0 only
    deadline: float | None = None  # ``time.perf_counter()`` by which a budgeted run must have saved its last checkpoint
    pacer: Pacer | None = None  # a budgeted run's schedule corrector (not after a resume: the schedule is kept)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.train.output)

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.train.total_steps or self.config.train.epochs * self.steps_per_epoch

    @property
    def stop_step(self) -> int:
        return min(self.total_steps, self.config.train.max_steps or self.total_steps)

    @property
    def batch_limit(self) -> int:
        """The last step the loader is asked for: a budgeted run's schedule may still grow up to it."""
        return self.pacer.limit if self.pacer else self.stop_step

    @property
    def lr_peak(self) -> float:
        return peak_lr(self.config)

    def lr(self, step: int) -> float:
        """The schedule's learning rate at ``step`` (every parameter group, the probe's too)."""
        warmup = min(self.total_steps, round(self.config.optim.warmup_epochs * self.steps_per_epoch))
        return warmup_cosine_lr(step, self.total_steps, warmup, self.lr_peak)


def build_run(config: Config, resume: bool, process: distributed.Process, started: float | None = None) -> Run:
    """Check the run folder, load the data, resolve the config (recipe, time budget), build (or restore) the state, open the outputs.

    ``started``: ``time.perf_counter()`` when the run began, from which ``train.time_budget`` counts.
    """
    started = time.perf_counter() if started is None else started
    resume = _resume_or_start(Path(config.train.output), resume)
    amp_dtype = resolve_precision(config.train.precision, process.device)  # before minutes of data loading
    data = load_config_data(config)
    facts = measure_data(data.pretrain, config.data.image_size or data.image_size, config.train.seed)
    config, choices = resolve_with_recipe(config, facts, process.local_world_size, process.device.type != "cpu")
    if choices and process.is_main:
        log.info("%s", describe(choices))
    batch = config.train.batch_size
    if batch > len(data.pretrain):
        raise SimCLRError(f"train.batch_size {batch} is larger than the dataset ({len(data.pretrain)} images)")
    if batch % process.world_size:
        raise SimCLRError(f"train.batch_size {batch} (the global batch) must be divisible by the {process.world_size} processes")
    resume_state = _load_resume_state(config, process.device) if resume else None
    state = build_train_state(config, data, process, amp_dtype)
    if resume_state is not None:
        state.load_state_dict(resume_state)
    config.augment.pipeline = resolve_pipeline(config.augment.pipeline)  # the saved config says what ran
    views = build_augmentation(config)
    batches = PretrainBatches(data.pretrain, views, config.train.seed, batch, config.augment.pipeline, config.data.workers,
                              process.device, process.world_size, process.rank, config.data.decode)
    logger = _open_outputs(config, data, views, state.step if resume else None) if process.is_main else None
    run = Run(config, process, data, state, batches, logger)
    _fix_schedule(run, started)
    if process.is_main:
        save_config(config, run.run_dir / "config.yaml")  # with the schedule's length and warm-up
    return run


def _fix_schedule(run: Run, started: float) -> None:
    """Under a time budget, measure and set the schedule's length (once: a resumed run keeps it); then the warm-up."""
    t = run.config.train
    if t.time_budget is not None and t.total_steps is None:
        budget = parse_duration(t.time_budget)
        t.total_steps, save_seconds = fit_schedule(run, budget, started)
        t.epochs = math.ceil(t.total_steps / run.steps_per_epoch)
        run.deadline = started + budget - save_seconds
        run.pacer = Pacer(run.deadline - MARGIN_SHARE * budget - MARGIN_SECONDS, 0, 2 * t.total_steps)
    schedule_epochs = run.total_steps / run.steps_per_epoch
    warmup = warmup_choice(run.config, schedule_epochs)
    if warmup is not None:
        apply_choices(run.config, [warmup])
        log.info("recipe: %s = %s (%s)", warmup.key, warmup.value, warmup.reason)
    elif run.config.optim.warmup_epochs > schedule_epochs:
        shortened = round(WARMUP_FRACTION * schedule_epochs, 4)
        log.warning("optim.warmup_epochs %g is longer than the %g-epoch schedule: shortened to %g (%.0f%% of it)",
                    run.config.optim.warmup_epochs, schedule_epochs, shortened, 100 * WARMUP_FRACTION)
        run.config.optim.warmup_epochs = shortened


def build_train_state(
    config: Config, data: DataSplits, process: distributed.Process, amp_dtype: torch.dtype | None
) -> TrainState:
    """Network, online probe, the one optimizer and the loss scaler of a resolved config, seeded alike on every process."""
    t, o, device = config.train, config.optim, process.device
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    model = build_model(config, data.mean, data.std).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    probe = nn.Linear(model.feature_dim, data.num_classes).to(device) if data.num_classes else None
    network = distributed.wrap_model(WithProbe(model, probe), process, t.sync_bn)
    if t.compile:
        network = torch.compile(network)
    # The paper's appendix: encoder and linear classifier updated together by LARS, with the same hyper-parameters.
    optimizer = build_optimizer(o.optimizer, parameter_groups(model, o.weight_decay, plain=probe), peak_lr(config), o.weight_decay, o.momentum)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    settings = StepSettings(t.temperature, amp_dtype, o.grad_clip, t.channels_last, t.loss_chunk_rows, t.loss_normalize)
    return TrainState(model, probe, optimizer, scaler, settings, network)


def _resume_or_start(run_dir: Path, resume: bool) -> bool:
    """Whether to resume: a new run needs a folder without checkpoints; a resumed one without any starts afresh."""
    checkpoints = ckpt.list_checkpoints(run_dir / "checkpoints")
    if not resume and checkpoints:
        raise SimCLRError(f"run folder '{run_dir}' already holds checkpoints; pass --resume to continue it or choose another --output")
    if resume and not checkpoints:
        # Killed before its first checkpoint: nothing to continue, so start the same run afresh.
        log.warning("no checkpoint in '%s' yet; starting the run from step 0", run_dir / "checkpoints")
    return resume and bool(checkpoints)


def _load_resume_state(config: Config, device: torch.device) -> dict[str, Any]:
    """The newest good checkpoint, the same file on every process (rank 0 chooses it)."""
    path = None
    if distributed.is_main():
        _, path = ckpt.load_latest(Path(config.train.output) / "checkpoints")  # also sets damaged newer files aside
    path = distributed.broadcast_object(path)
    state = ckpt.load_file(path)
    ckpt.check_resumable(state, path)
    check_same_model(state["config"], config, f"checkpoint '{path}'")
    check_same_training(state["config"], config, f"checkpoint '{path}'")
    distributed.check_same_on_all_ranks(int(state["step"]), "the step to resume from", device)
    log.info("resuming from %s at step %d", path, state["step"])
    return state


def _open_outputs(config: Config, data: DataSplits, views: TwoViewTransform, resume_step: int | None) -> MetricsLogger:
    """Rank 0's files: config.yaml, the augmentation preview of a new run, metrics, skipped images."""
    t, run_dir = config.train, Path(config.train.output)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    if resume_step is None:
        # Views of six images spread over the dataset (the first six are often one class).
        spread = np.linspace(0, len(data.pretrain) - 1, num=min(6, len(data.pretrain))).round().astype(int)
        save_augmentation_grid([data.pretrain[int(i)][0] for i in spread], views, run_dir / "augmentations.png", seed=t.seed)
    logger = MetricsLogger(run_dir, resume_step=resume_step, wandb_project=t.wandb_project, wandb_config=config.to_dict())
    if data.skipped:
        logger.log({"step": resume_step or 0, "skipped_images": len(data.skipped)})
        (run_dir / "skipped_images.txt").write_text("".join(f"{path}\t{reason}\n" for path, reason in data.skipped))
    return logger

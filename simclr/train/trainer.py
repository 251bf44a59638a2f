"""The pretraining loop: two views, f and g, NT-Xent, LARS, warm-up + cosine, checkpoints.

Read top to bottom: ``pretrain`` sets everything up from a ``Config``, then runs
``train_step`` over seeded two-view batches, logging, checkpointing and monitoring as it goes.
Under ``torchrun`` every process runs this same loop on its shard of each global batch;
``simclr.distributed`` holds what differs, and only rank 0 writes files or shows progress.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from simclr import distributed
from simclr.augment import save_augmentation_grid
from simclr.config import Config, save_config
from simclr.data import DataSplits
from simclr.errors import SimCLRError
from simclr.evaluate import extract_features, knn_evaluate
from simclr.optim import build_optimizer, parameter_groups, set_lr, warmup_cosine_lr
from simclr.train import checkpoint as ckpt
from simclr.train.build import (
    build_augmentation,
    build_model,
    check_same_model,
    check_same_training,
    load_config_data,
    peak_lr,
    resolve_config,
    resolve_precision,
)
from simclr.train.loader import EpochSampler, PretrainBatches, TwoViewDataset, use_batched_pipeline
from simclr.train.metrics import MetricsLogger, read_metrics
from simclr.train.plots import plot_metrics
from simclr.train.preemption import StopRequest
from simclr.train.step import StepStats, TrainState, train_step
from simclr.validation import validate_for_training

log = logging.getLogger("simclr")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_resume_state(config: Config, checkpoint_dir: Path, device: torch.device) -> dict[str, Any]:
    """The newest good checkpoint, the same file on every process (rank 0 chooses it)."""
    path = None
    if distributed.is_main():
        _, path = ckpt.load_latest(checkpoint_dir)  # also sets damaged newer files aside
    path = distributed.broadcast_object(path)
    state = ckpt.load_file(path)
    check_same_model(state["config"], config, f"checkpoint '{path}'")
    check_same_training(state["config"], config, f"checkpoint '{path}'")
    distributed.check_same_on_all_ranks(int(state["step"]), "the step to resume from", device)
    log.info("resuming from %s at step %d", path, state["step"])
    return state


def _knn_monitor(model: nn.Module, data: DataSplits, config: Config, device: torch.device) -> float:
    """kNN top-1 of the current encoder: training split as the bank, test split as queries."""
    size, batch = config.data.image_size, config.eval.batch_size
    bank, bank_labels = extract_features(model, data.train, size, device, batch, desc="knn bank")
    queries, query_labels = extract_features(model, data.test, size, device, batch, desc="knn queries")
    result = knn_evaluate(bank, bank_labels, queries, query_labels, data.num_classes, config.eval.knn_k, config.eval.knn_temperature)
    return result["top1"]


def build_train_state(
    config: Config, data: DataSplits, process: distributed.Process, amp_dtype: torch.dtype | None
) -> TrainState:
    """Network, online probe, optimizers and loss scaler of a resolved config, seeded alike on every process."""
    seed_everything(config.train.seed)
    device = process.device
    model = build_model(config, data.mean, data.std).to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    network = distributed.wrap_model(model, process, config.train.sync_bn)
    if config.train.compile:
        network = torch.compile(network)
    probe = nn.Linear(model.feature_dim, data.num_classes).to(device) if data.num_classes else None
    o = config.optim
    return TrainState(
        model=model,
        probe=probe,
        optimizer=build_optimizer(o.optimizer, parameter_groups(model, o.weight_decay), peak_lr(config), o.weight_decay, o.momentum),
        probe_optimizer=torch.optim.Adam(probe.parameters(), lr=config.train.probe_lr) if probe else None,
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        network=network,
        probe_network=distributed.wrap_model(probe, process, sync_batchnorm=False) if probe else None,
    )


def _save_augmentation_preview(data: DataSplits, dataset: TwoViewDataset, path: Path, seed: int) -> None:
    """Views of six images spread over the dataset (the first six are often one class)."""
    spread = np.linspace(0, len(data.pretrain) - 1, num=min(6, len(data.pretrain))).round().astype(int)
    save_augmentation_grid([data.pretrain[int(i)][0] for i in spread], dataset.transform, path, seed=seed)


def pretrain(config: Config, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) SimCLR pretraining as ``config`` says; returns a summary of the run.

    Launched by ``torchrun``, every process calls this; ``train.batch_size`` is the global batch.
    """
    validate_for_training(config)
    with distributed.session(config.train.device) as process:
        if not process.is_main:
            logging.getLogger("simclr").setLevel(logging.WARNING)
        return _pretrain(config, resume, process)


def _pretrain(config: Config, resume: bool, process: distributed.Process) -> dict[str, Any]:
    run_dir = Path(config.train.output)
    checkpoint_dir = run_dir / "checkpoints"
    if not resume and ckpt.list_checkpoints(checkpoint_dir):
        raise SimCLRError(f"run folder '{run_dir}' already holds checkpoints; pass --resume to continue it or choose another --output")
    if resume and not ckpt.list_checkpoints(checkpoint_dir):
        # Killed before its first checkpoint: nothing to continue, so start the same run afresh.
        log.warning("no checkpoint in '%s' yet; starting the run from step 0", checkpoint_dir)
        resume = False
    amp_dtype = resolve_precision(config.train.precision, process.device)  # before minutes of data loading
    data = load_config_data(config)
    config = resolve_config(config, data.image_size, process.local_world_size)
    t, main = config.train, process.is_main
    if t.batch_size > len(data.pretrain):
        raise SimCLRError(f"train.batch_size {t.batch_size} is larger than the dataset ({len(data.pretrain)} images)")
    if t.batch_size % process.world_size:
        raise SimCLRError(f"train.batch_size {t.batch_size} (the global batch) must be divisible by the {process.world_size} processes")
    device = process.device
    resume_state = _load_resume_state(config, checkpoint_dir, device) if resume else None
    state = build_train_state(config, data, process, amp_dtype)
    if resume_state is not None:
        state.load_state_dict(resume_state)

    dataset = TwoViewDataset(data.pretrain, build_augmentation(config), t.seed)
    batched = use_batched_pipeline(config.augment.pipeline, data.pretrain)
    config.augment.pipeline = "batched" if batched else "per_image"  # the saved config says what ran
    batches = PretrainBatches(dataset, batched, config.data.workers, device)
    steps_per_epoch = len(dataset) // t.batch_size
    total_steps = t.epochs * steps_per_epoch
    stop_step = min(total_steps, t.max_steps or total_steps)
    warmup_steps = min(total_steps, round(config.optim.warmup_epochs * steps_per_epoch))
    top_lr = peak_lr(config)

    logger = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        if resume_state is None:
            _save_augmentation_preview(data, dataset, run_dir / "augmentations.png", t.seed)
        logger = MetricsLogger(run_dir, resume_step=state.step if resume_state else None,
                               wandb_project=t.wandb_project, wandb_config=config.to_dict())
        if data.skipped:
            logger.log({"step": state.step, "skipped_images": len(data.skipped)})
            (run_dir / "skipped_images.txt").write_text("".join(f"{path}\t{reason}\n" for path, reason in data.skipped))
    log.info("pretraining %s (h: %d-d) on %s: %d images, %d steps/epoch, %d steps, global batch %d over %d process(es), "
             "peak lr %.4g, device %s, precision %s, %s augmentation", config.model.arch, state.model.feature_dim, data.name,
             len(dataset), steps_per_epoch, stop_step, t.batch_size, process.world_size, top_lr, device, amp_dtype or "fp32",
             "batched" if batched else "per-image")
    progress = tqdm(total=stop_step, initial=state.step, desc="pretrain", unit="step", dynamic_ncols=True, disable=not main)
    started, first_step = time.perf_counter(), state.step
    pending = StepStats()

    def flush() -> None:
        rows = pending.drain()  # a collective: every process flushes at the same steps
        for row in rows if logger else []:
            logger.log(row)
        for row in rows:
            _check_finite(row, run_dir, top_lr, amp_dtype)
        if rows:
            progress.set_postfix(loss=f"{rows[-1]['loss']:.4f}", lr=f"{rows[-1]['lr']:.3g}")

    def save() -> None:
        flush()  # also the finiteness checks: a checkpoint never holds weights after a NaN
        _check_finite_weights(state.model, state.step, run_dir, top_lr, amp_dtype)
        if logger:
            logger.flush()  # metrics.jsonl on disk up to the checkpoint's step, so a kill loses no row
        if main:
            ckpt.save_checkpoint(state.state_dict(config), checkpoint_dir, t.keep_checkpoints)

    stopped_by = None
    try:
        with StopRequest() as stop:
            while state.step < stop_step and stopped_by is None:
                epoch, offset = divmod(state.step, steps_per_epoch)
                sampler = EpochSampler(len(dataset), t.batch_size, t.seed, epoch, offset, process.world_size, process.rank)
                for view_a, view_b, labels in batches.epoch(sampler):
                    lr = warmup_cosine_lr(state.step, total_steps, warmup_steps, top_lr)
                    set_lr(state.optimizer, lr)
                    stats = train_step(state, view_a, view_b, labels, t.temperature, amp_dtype, config.optim.grad_clip,
                                       t.channels_last, t.loss_chunk_rows)
                    state.step += 1
                    progress.update(1)
                    pending.add(state.step, epoch, lr, stats)
                    if state.step % t.log_every == 0:
                        flush()
                    epoch_done = state.step % steps_per_epoch == 0
                    if epoch_done and t.knn_every and data.test is not None and (epoch + 1) % t.knn_every == 0:
                        # Before the checkpoint, so a run killed in between redoes it on resume.
                        flush()
                        knn_top1 = _knn_monitor(state.model, data, config, device)
                        if logger:
                            logger.log({"step": state.step, "epoch": epoch, "knn_top1": knn_top1})
                        log.info("epoch %d: kNN top-1 %.4f", epoch + 1, knn_top1)
                    # One process polls its flag every step; several agree on it when they log anyway.
                    polled = process.world_size == 1 or state.step % t.log_every == 0
                    if polled and distributed.any_rank(stop.requested, device):
                        stopped_by = stop.signal_name or "a signal to another process"
                    if state.step % t.checkpoint_every == 0 or state.step == stop_step or stopped_by:
                        save()
                    if state.step >= stop_step or stopped_by:
                        break
        flush()
    finally:
        progress.close()  # so an error message starts on its own line
    elapsed = time.perf_counter() - started
    summary = {
        "run_dir": str(run_dir),
        "steps": state.step,
        "seconds": round(elapsed, 1),
        "images_per_second": round((state.step - first_step) * t.batch_size / max(elapsed, 1e-9), 1),
        "processes": process.world_size,
        "stopped_by": stopped_by,
        "skipped_images": len(data.skipped),
    }
    if logger:
        logger.close()
        plot_metrics(read_metrics(run_dir / "metrics.jsonl"), run_dir / "plots")
    distributed.barrier()  # nobody leaves (and tears the group down) before rank 0 has finished writing
    if stopped_by:
        log.warning("stopped by %s at step %d; checkpoint saved. Resume with: simclr pretrain --output %s --resume",
                    stopped_by, state.step, run_dir)
    else:
        log.info("finished: %s", summary)
    return summary


def _check_finite(row: dict[str, Any], run_dir: Path, top_lr: float, amp_dtype: torch.dtype | None) -> None:
    """Stop at the first non-finite loss, naming the step and the usual causes."""
    if not math.isfinite(row["loss"]):
        _stop_non_finite(f"loss became {row['loss']} at step {row['step']}", run_dir, top_lr, amp_dtype)


def _check_finite_weights(model: nn.Module, step: int, run_dir: Path, top_lr: float, amp_dtype: torch.dtype | None) -> None:
    """Step s's loss is computed before its update, so the update (or BatchNorm's statistics) can still overflow."""
    if not torch.stack([t.isfinite().all() for t in model.state_dict().values() if t.is_floating_point()]).all():
        _stop_non_finite(f"weights became non-finite at step {step}", run_dir, top_lr, amp_dtype)


def _stop_non_finite(what: str, run_dir: Path, top_lr: float, amp_dtype: torch.dtype | None) -> None:
    causes = f"the learning rate may be too high (peak {top_lr:.4g}; try a lower --lr or --grad-clip)"
    if amp_dtype == torch.float16:
        causes += ", or fp16 overflowed (try --precision bf16 or fp32)"
    raise SimCLRError(f"{what}: {causes}; "
                      f"the checkpoints in '{run_dir / 'checkpoints'}' from before it are kept")

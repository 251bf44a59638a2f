"""The pretraining loop: two views, f and g, NT-Xent, LARS, warm-up + cosine, checkpoints.

Read top to bottom: ``pretrain`` sets everything up from a ``Config``, then runs
``train_step`` over seeded two-view batches, logging, checkpointing and monitoring as it goes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from simclr.augment import save_augmentation_grid
from simclr.config import Config, save_config
from simclr.data import DataSplits
from simclr.errors import SimCLRError
from simclr.evaluate import extract_features, knn_evaluate
from simclr.loss import nt_xent
from simclr.optim import build_optimizer, parameter_groups, set_lr, warmup_cosine_lr
from simclr.train import checkpoint as ckpt
from simclr.train.build import (
    build_augmentation, build_model, check_same_model, check_same_training, load_config_data, peak_lr, resolve_config,
    resolve_device, resolve_precision,
)
from simclr.train.loader import EpochSampler, TwoViewDataset, make_loader
from simclr.train.metrics import MetricsLogger, read_metrics
from simclr.train.plots import plot_metrics
from simclr.validation import validate

log = logging.getLogger("simclr")


@dataclass
class TrainState:
    """Everything that changes during training and goes into a checkpoint."""

    model: nn.Module
    probe: nn.Linear | None
    optimizer: torch.optim.Optimizer
    probe_optimizer: torch.optim.Optimizer | None
    scaler: torch.amp.GradScaler
    step: int = 0

    def state_dict(self, config: Config) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "probe": self.probe.state_dict() if self.probe else None,
            "optimizer": self.optimizer.state_dict(),
            "probe_optimizer": self.probe_optimizer.state_dict() if self.probe_optimizer else None,
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "config": config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.probe is not None and state["probe"] is not None:
            self.probe.load_state_dict(state["probe"])
            self.probe_optimizer.load_state_dict(state["probe_optimizer"])  # type: ignore[union-attr]
        if state["scaler"]:  # empty when the run was saved without fp16 loss scaling
            self.scaler.load_state_dict(state["scaler"])
        ckpt.restore_rng_state(state["rng"])
        self.step = int(state["step"])


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision where asked; no autocast context at all in fp32 (not every backend has one)."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_step(
    state: TrainState,
    view_a: Tensor,
    view_b: Tensor,
    labels: Tensor,
    temperature: float,
    amp_dtype: torch.dtype | None,
    grad_clip: float | None,
    channels_last: bool,
) -> dict[str, Tensor]:
    """One optimisation step on a batch of N pairs; returns detached scalars (no host sync)."""
    device = next(state.model.parameters()).device
    # Both views in one forward pass: BatchNorm sees all 2N images, as in the paper's code.
    images = torch.cat([view_a, view_b]).to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, amp_dtype):
        h, z = state.model(images)
    z_a, z_b = z.chunk(2)
    out = nt_xent(z_a, z_b, temperature)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(out.loss).backward()
    if grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    stats = {"loss": out.loss.detach(), "contrastive_acc": out.accuracy}
    if state.probe is not None:
        stats["probe_acc"] = _probe_step(state, h.detach().float(), labels.to(device).repeat(2))
    return stats


def _probe_step(state: TrainState, features: Tensor, labels: Tensor) -> Tensor:
    """Online linear probe on stop-gradient features; unlabelled rows (-1) are skipped."""
    known = labels >= 0
    logits = state.probe(features)  # type: ignore[misc]
    loss = F.cross_entropy(logits[known], labels[known]) if known.any() else logits.sum() * 0
    state.probe_optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
    loss.backward()
    state.probe_optimizer.step()  # type: ignore[union-attr]
    correct = (logits.argmax(1) == labels) & known
    return correct.sum() / known.sum().clamp_min(1)


def _load_resume_state(config: Config, checkpoint_dir: Path) -> dict[str, Any]:
    state, path = ckpt.load_latest(checkpoint_dir)
    check_same_model(state["config"], config, f"checkpoint '{path}'")
    check_same_training(state["config"], config, f"checkpoint '{path}'")
    log.info("resuming from %s at step %d", path, state["step"])
    return state


def _knn_monitor(model: nn.Module, data: DataSplits, config: Config, device: torch.device) -> float:
    """kNN top-1 of the current encoder: training split as the bank, test split as queries."""
    size, batch = config.data.image_size, config.eval.batch_size
    bank, bank_labels = extract_features(model, data.train, size, device, batch, desc="knn bank")
    queries, query_labels = extract_features(model, data.test, size, device, batch, desc="knn queries")
    result = knn_evaluate(bank, bank_labels, queries, query_labels, data.num_classes, config.eval.knn_k, config.eval.knn_temperature)
    return result["top1"]


def build_train_state(config: Config, data: DataSplits, device: torch.device, amp_dtype: torch.dtype | None) -> TrainState:
    """Network, online probe, optimizers and loss scaler of a resolved config, seeded."""
    seed_everything(config.train.seed)
    model = build_model(config, data.mean, data.std).to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    probe = nn.Linear(model.feature_dim, data.num_classes).to(device) if data.num_classes else None
    o = config.optim
    return TrainState(
        model=model,
        probe=probe,
        optimizer=build_optimizer(o.optimizer, parameter_groups(model, o.weight_decay), peak_lr(config), o.weight_decay, o.momentum),
        probe_optimizer=torch.optim.Adam(probe.parameters(), lr=config.train.probe_lr) if probe else None,
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
    )


def _save_augmentation_preview(data: DataSplits, dataset: TwoViewDataset, path: Path, seed: int) -> None:
    """Views of six images spread over the dataset (the first six are often one class)."""
    spread = np.linspace(0, len(data.pretrain) - 1, num=min(6, len(data.pretrain))).round().astype(int)
    save_augmentation_grid([data.pretrain[int(i)][0] for i in spread], dataset.transform, path, seed=seed)


def pretrain(config: Config, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) SimCLR pretraining as ``config`` says; returns a summary of the run."""
    validate(config)
    run_dir = Path(config.train.output)
    checkpoint_dir = run_dir / "checkpoints"
    if not resume and ckpt.list_checkpoints(checkpoint_dir):
        raise SimCLRError(f"run folder '{run_dir}' already holds checkpoints; pass --resume to continue it or choose another --output")
    data = load_config_data(config)
    config = resolve_config(config, data.image_size)
    t = config.train
    if t.batch_size > len(data.pretrain):
        raise SimCLRError(f"train.batch_size {t.batch_size} is larger than the dataset ({len(data.pretrain)} images)")
    resume_state = _load_resume_state(config, checkpoint_dir) if resume else None
    device = resolve_device(t.device)
    amp_dtype = resolve_precision(t.precision, device)
    state = build_train_state(config, data, device, amp_dtype)
    if resume_state is not None:
        state.load_state_dict(resume_state)

    dataset = TwoViewDataset(data.pretrain, build_augmentation(config), t.seed)
    steps_per_epoch = len(dataset) // t.batch_size
    total_steps = t.epochs * steps_per_epoch
    stop_step = min(total_steps, t.max_steps or total_steps)
    warmup_steps = min(total_steps, round(config.optim.warmup_epochs * steps_per_epoch))
    top_lr = peak_lr(config)

    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    if resume_state is None:
        _save_augmentation_preview(data, dataset, run_dir / "augmentations.png", t.seed)
    logger = MetricsLogger(run_dir, resume_step=state.step if resume_state else None)
    log.info("pretraining %s (h: %d-d) on %s: %d images, %d steps/epoch, %d steps, peak lr %.4g, device %s, precision %s",
             config.model.arch, state.model.feature_dim, data.name, len(dataset), steps_per_epoch, stop_step, top_lr,
             device, amp_dtype or "fp32")
    progress = tqdm(total=stop_step, initial=state.step, desc="pretrain", unit="step", dynamic_ncols=True)
    started, first_step = time.perf_counter(), state.step

    def flush() -> None:
        if (row := logger.flush()) is not None:
            progress.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.3g}")

    while state.step < stop_step:
        epoch, offset = divmod(state.step, steps_per_epoch)
        dataset.epoch = epoch
        sampler = EpochSampler(len(dataset), t.batch_size, t.seed, epoch, start_step=offset)
        for view_a, view_b, labels, _ in make_loader(dataset, sampler, config.data.workers, device.type == "cuda"):
            lr = warmup_cosine_lr(state.step, total_steps, warmup_steps, top_lr)
            set_lr(state.optimizer, lr)
            stats = train_step(state, view_a, view_b, labels, t.temperature, amp_dtype, config.optim.grad_clip, t.channels_last)
            state.step += 1
            progress.update(1)
            logger.add_step(state.step, epoch, lr, stats)
            if state.step % t.log_every == 0:
                flush()
            epoch_done = state.step % steps_per_epoch == 0
            if epoch_done and t.knn_every and data.test is not None and (epoch + 1) % t.knn_every == 0:
                # Before the checkpoint, so a run killed in between redoes it on resume.
                flush()
                knn_top1 = _knn_monitor(state.model, data, config, device)
                logger.log({"step": state.step, "epoch": epoch, "knn_top1": knn_top1})
                log.info("epoch %d: kNN top-1 %.4f", epoch + 1, knn_top1)
            if state.step % t.checkpoint_every == 0 or state.step == stop_step:
                flush()
                ckpt.save_checkpoint(state.state_dict(config), checkpoint_dir, t.keep_checkpoints)
            if state.step >= stop_step:
                break
    progress.close()
    logger.close()
    elapsed = time.perf_counter() - started
    plot_metrics(read_metrics(run_dir / "metrics.jsonl"), run_dir / "plots")
    summary = {
        "run_dir": str(run_dir),
        "steps": state.step,
        "seconds": round(elapsed, 1),
        "images_per_second": round((state.step - first_step) * t.batch_size / max(elapsed, 1e-9), 1),
    }
    log.info("finished: %s", summary)
    return summary

"""One pretraining step (both views in one forward, NT-Xent, optimizer, online probe) and its state."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simclr import distributed
from simclr.config import Config
from simclr.loss import nt_xent
from simclr.train import checkpoint as ckpt


@dataclass
class TrainState:
    """Everything that changes during training and goes into a checkpoint.

    ``model``/``probe`` are the plain modules (their state dicts are what is saved);
    ``network``/``probe_network`` are what the forward pass calls: the same modules, or
    their DistributedDataParallel wrappers when several processes train together.
    """

    model: nn.Module
    probe: nn.Linear | None
    optimizer: torch.optim.Optimizer
    probe_optimizer: torch.optim.Optimizer | None
    scaler: torch.amp.GradScaler
    network: nn.Module | None = None
    probe_network: nn.Module | None = None
    step: int = 0

    def __post_init__(self) -> None:
        self.network = self.network or self.model
        self.probe_network = self.probe_network or self.probe

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


def train_step(
    state: TrainState,
    view_a: Tensor,
    view_b: Tensor,
    labels: Tensor,
    temperature: float,
    amp_dtype: torch.dtype | None,
    grad_clip: float | None,
    channels_last: bool,
    loss_chunk_rows: int | None = None,
) -> dict[str, Tensor]:
    """One optimisation step on this process's n pairs; returns detached scalars (no host sync).

    With several processes the loss contrasts every local anchor with the whole global
    batch (gathered with gradients), and the returned scalars are this process's share:
    :class:`StepStats` averages them over processes when it reads them.
    """
    device = next(state.model.parameters()).device
    # Both views in one forward pass: BatchNorm sees all 2N images, as in the paper's code.
    images = torch.cat([view_a, view_b]).to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, amp_dtype):
        h, z = state.network(images)  # type: ignore[misc]
    z_a, z_b = z.chunk(2)
    gather = distributed.gather_with_grad if distributed.world_size() > 1 else None
    out = nt_xent(z_a, z_b, temperature, gather=gather, chunk_rows=loss_chunk_rows)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(out.loss).backward()
    if grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    stats = {"loss": out.loss.detach(), "contrastive_acc": out.accuracy}
    if state.probe is not None:
        stats["probe_acc"] = _probe_step(state, h.detach().float(), labels.to(device, non_blocking=True).repeat(2))
    return stats


def _probe_step(state: TrainState, features: Tensor, labels: Tensor) -> Tensor:
    """Online linear probe on stop-gradient features; unlabelled rows (-1) are skipped.

    The loss is the cross-entropy summed here and divided by the labelled count of the
    global batch, times the process count that gradient averaging divides by: the
    probe then gets the gradient of the global mean whatever the labels' spread.
    """
    known = labels >= 0
    logits = state.probe_network(features)  # type: ignore[misc]
    correct = ((logits.argmax(1) == labels) & known).sum()
    counts = distributed.all_reduce_sum(torch.stack([known.sum(), correct]).float())
    # Masked rather than indexed, so no host sync asks which rows are labelled.
    summed = (F.cross_entropy(logits, labels.clamp_min(0), reduction="none") * known).sum()
    loss = summed * distributed.world_size() / counts[0].clamp_min(1)
    state.probe_optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
    loss.backward()
    state.probe_optimizer.step()  # type: ignore[union-attr]
    # Already global; the averaging in StepStats leaves it unchanged.
    return counts[1] / counts[0].clamp_min(1)


class StepStats:
    """Per-step scalars kept on the device until read, then averaged over processes in one go."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, int, float, dict[str, Tensor]]] = []

    def add(self, step: int, epoch: int, lr: float, stats: dict[str, Tensor]) -> None:
        self.pending.append((step, epoch, lr, stats))

    def drain(self) -> list[dict[str, Any]]:
        """Rows ``{step, epoch, lr, loss, …}`` of the queued steps (one collective, one host sync).

        Every process must call it at the same steps.
        """
        if not self.pending:
            return []
        keys = list(self.pending[0][3])
        values = torch.stack([torch.stack([stats[key].float() for key in keys]) for *_, stats in self.pending])
        values = distributed.all_reduce_mean(values).tolist()
        rows = [
            {"step": step, "epoch": epoch, "lr": lr, **{key: round(value, 6) for key, value in zip(keys, row)}}
            for (step, epoch, lr, _), row in zip(self.pending, values)
        ]
        self.pending.clear()
        return rows

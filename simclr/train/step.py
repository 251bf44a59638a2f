"""One pretraining step (both views in one forward, NT-Xent plus the online probe, one backward) and its state."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simclr import checkpoint as ckpt
from simclr import distributed
from simclr.config import Config
from simclr.loss import nt_xent

Batch = tuple[Tensor, Tensor, Tensor]  # this process's (view_a [n,3,S,S], view_b [n,3,S,S], labels [n], -1: none)


@dataclass(frozen=True)
class StepSettings:
    """How a step computes: NT-Xent temperature (and L2 normalisation), autocast dtype (None: fp32), clipping, memory layout."""

    temperature: float
    amp_dtype: torch.dtype | None = None
    grad_clip: float | None = None
    channels_last: bool = False
    loss_chunk_rows: int | None = None
    loss_normalize: bool = True


class WithProbe(nn.Module):
    """The SimCLR network and its online linear probe as one module, so one DDP wrapper reduces both.

    ``forward(images [B,3,S,S])`` -> ``(h [B,D], z [B,d], logits [B,C] or None)``; the probe
    sees stop-gradient h, so it never changes the encoder.
    """

    def __init__(self, model: nn.Module, probe: nn.Linear | None) -> None:
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        h, z = self.model(images)
        return h, z, self.probe(h.detach()) if self.probe is not None else None


@dataclass
class TrainState:
    """Everything that changes during training and goes into a checkpoint, and how a step runs.

    ``model``/``probe`` are the plain modules (their state dicts are what is saved); ``network``
    is what the forward pass calls: ``WithProbe(model, probe)``, or its DDP / compiled wrapper.
    The probe's parameters are the optimizer's last group (no weight decay, no LARS adaptation).
    """

    model: nn.Module
    probe: nn.Linear | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    settings: StepSettings
    network: nn.Module | None = None
    step: int = 0

    def __post_init__(self) -> None:
        if self.network is None:  # not `or`: a torch.compile'd module refuses truth tests (len())
            self.network = WithProbe(self.model, self.probe)

    def state_dict(self, config: Config) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "probe": self.probe.state_dict() if self.probe else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "config": config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.probe is not None and state["probe"] is not None:
            self.probe.load_state_dict(state["probe"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty when the run was saved without fp16 loss scaling
            self.scaler.load_state_dict(state["scaler"])
        ckpt.restore_rng_state(state["rng"])
        self.step = int(state["step"])


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision where asked; no autocast context at all in fp32 (not every backend has one)."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()


def train_step(state: TrainState, batch: Batch) -> dict[str, Tensor]:
    """One optimisation step on this process's n pairs; returns detached scalars (no host sync).

    One backward of NT-Xent plus the probe's cross-entropy. With several processes the loss
    contrasts every local anchor with the whole global batch (gathered with gradients), and
    the returned scalars are this process's share: :class:`StepStats` averages them.
    """
    view_a, view_b, labels = batch
    s, device = state.settings, next(state.model.parameters()).device
    # Both views in one forward pass: BatchNorm sees all 2N images, as in the paper's code.
    images = torch.cat([view_a, view_b]).to(device, non_blocking=True)
    if s.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, s.amp_dtype):
        _, z, logits = state.network(images)  # type: ignore[misc]
    z_a, z_b = z.chunk(2)
    gather = distributed.gather_with_grad if distributed.world_size() > 1 else None
    out = nt_xent(z_a, z_b, s.temperature, gather=gather, chunk_rows=s.loss_chunk_rows, normalize=s.loss_normalize)
    stats, loss = {"loss": out.loss.detach(), "contrastive_acc": out.accuracy}, out.loss
    if logits is not None:
        probe, stats["probe_acc"] = probe_loss(logits.float(), labels.to(device, non_blocking=True).repeat(2))
        loss = loss + probe
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if s.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), s.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    return stats


def probe_loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The online probe's loss and global accuracy on logits [n, C], labels [n]; unlabelled rows (-1) are skipped.

    The cross-entropy is summed here and divided by the labelled count of the global batch,
    times the process count that gradient averaging divides by: the probe then gets the
    gradient of the global mean whatever the labels' spread. The accuracy is already global.
    """
    known = labels >= 0
    correct = ((logits.argmax(1) == labels) & known).sum()
    counts = distributed.all_reduce_sum(torch.stack([known.sum(), correct]).float())
    # Masked rather than indexed, so no host sync asks which rows are labelled.
    summed = (F.cross_entropy(logits, labels.clamp_min(0), reduction="none") * known).sum()
    return summed * distributed.world_size() / counts[0].clamp_min(1), counts[1] / counts[0].clamp_min(1)


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

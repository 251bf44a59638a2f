"""All of torch.distributed in one place, each helper a no-op in a single process.

Launch with ``torchrun`` (one process per GPU, or several CPU processes with Gloo); the
trainer calls :func:`session`, which reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``), picks NCCL for CUDA and Gloo otherwise, and gives back
the process's device. Without those variables everything runs in one process.

Gradient convention: each rank's loss is the mean over its own anchors and
DistributedDataParallel averages gradients over ranks. For the parameters to receive the
gradient of the global-batch loss, a gather must send back to each rank the *sum* over ranks
of the gradients its rows received (:class:`_GatherWithGrad`), and BatchNorm statistics
must be reduced the same way (:class:`GlobalBatchNorm`, the CPU counterpart of
``nn.SyncBatchNorm``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from simclr.errors import SimCLRError

__all__ = [
    "GlobalBatchNorm", "Process", "all_reduce_mean", "all_reduce_sum", "any_rank", "barrier",
    "broadcast_object", "check_same_on_all_ranks", "gather_in_order", "gather_with_grad", "is_main", "rank",
    "session", "shard", "world_size", "wrap_model",
]


@dataclass(frozen=True)
class Process:
    """Where this process sits: global rank and count, rank and count on its machine, device."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def _device_for(local_rank: int, requested: str) -> torch.device:
    from simclr.runs import resolve_device  # device rules live with the other config resolution

    device = resolve_device(requested)
    if device.type == "cuda" and requested in ("auto", "cuda"):
        if local_rank >= torch.cuda.device_count():
            raise SimCLRError(f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} CUDA device(s); use --nproc-per-node <= the GPU count")
        device = torch.device("cuda", local_rank)
    if device.type == "mps" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SimCLRError("multi-process training on MPS is not supported; use --device cpu or one process")
    return device


@contextlib.contextmanager
def session(requested_device: str = "auto", timeout_minutes: float = 30.0) -> Iterator[Process]:
    """Join torchrun's process group (or run alone) for the duration of the block.

    A group that already exists (e.g. made by the caller) is used and left open.
    """
    if not launched_by_torchrun():
        yield Process(0, 1, 0, 1, _device_for(0, requested_device))
        return
    local_rank = int(os.environ["LOCAL_RANK"])
    device = _device_for(local_rank, requested_device)
    created = not dist.is_initialized()
    if created:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    try:
        yield Process(dist.get_rank(), dist.get_world_size(), local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")), device)
    finally:
        if created:
            dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if _active():
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate equal-shaped tensors of all ranks along dim 0; backward sums over ranks."""

    @staticmethod
    def forward(ctx: Any, local: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        ctx.rows = local.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        # Every rank's loss used every row; the rank that produced a row needs the sum.
        grad = grad.contiguous()
        start = dist.get_rank() * ctx.rows
        if dist.get_backend() == "nccl":
            local = torch.empty_like(grad[start : start + ctx.rows])
            dist.reduce_scatter_tensor(local, grad)
            return local
        dist.all_reduce(grad)  # Gloo has no reduce-scatter
        return grad[start : start + ctx.rows]


def gather_with_grad(local: Tensor) -> tuple[Tensor, int]:
    """(n, …) rows of every rank → ((world·n, …) in rank order, index of this rank's first row).

    Gradients flow back to the rank that produced each row. Every rank must pass the same shape.
    """
    if not _active():
        return local, 0
    return _GatherWithGrad.apply(local), rank() * local.shape[0]


def all_reduce_sum(value: Tensor) -> Tensor:
    """Sum over ranks (a new tensor, not differentiable)."""
    if not _active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value


def all_reduce_mean(value: Tensor) -> Tensor:
    """Mean over ranks (a new tensor, not differentiable)."""
    return all_reduce_sum(value) / world_size()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (picklable Python objects only; rank 0 made them)."""
    if not _active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on any (a collective: all ranks must call it)."""
    if not _active():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def check_same_on_all_ranks(value: int, what: str, device: torch.device) -> None:
    """Raise on every rank if ranks disagree on an integer (e.g. the resumed step)."""
    if not _active():
        return
    values = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(values, torch.tensor([value], device=device))  # NCCL only moves GPU tensors
    seen = [int(v) for v in values]
    if len(set(seen)) > 1:
        raise SimCLRError(f"ranks disagree on {what}: {seen}")


def shard(size: int) -> list[int]:
    """This rank's indices of ``range(size)`` for evaluation: rank, rank + R, …, padded by repeats
    so every rank has ``ceil(size / R)`` (see :func:`gather_in_order`)."""
    count, ranks = -(-size // world_size()), world_size()
    return [min(rank() + k * ranks, size - 1) for k in range(count)]


def gather_in_order(local: Tensor, size: int) -> Tensor:
    """Inverse of :func:`shard`: rows of every rank → (size, …) in dataset order, on every rank."""
    if not _active():
        return local
    parts = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(parts, local.contiguous())
    # Row k of rank r is index r + k·R: interleave the ranks, then drop the padding.
    return torch.stack(parts, dim=1).flatten(0, 1)[:size]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the whole global batch, on any device.

    ``nn.SyncBatchNorm`` runs on GPUs only; this does the same with differentiable
    all-reduces (two passes: mean, then variance), so CPU/Gloo runs match one process.
    Parameter and buffer names are BatchNorm's, so checkpoints stay interchangeable.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 4):
            raise SimCLRError(f"GlobalBatchNorm expects (N, C) or (N, C, H, W) input, got {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        out = self._normalize(input)
        # Swapped in for timm's BatchNormAct2d, it keeps that layer's dropout and activation (same names).
        return self.act(self.drop(out)) if _has_norm_act(self) else out

    def _normalize(self, input: Tensor) -> Tensor:
        if not (self.training and _active()):
            return super().forward(input)
        self._check_input_dim(input)
        x = input.to(torch.promote_types(input.dtype, torch.float32))  # bf16 statistics would be too coarse
        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        total = all_reduce_sum(count)
        mean = _differentiable_sum(x.sum(dims)) / total
        shape = [1, -1] + [1] * (x.dim() - 2)
        centred = x - mean.view(shape)
        var = _differentiable_sum(centred.square().sum(dims)) / total
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                unbiased = var.detach() * total / (total - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return out.to(input.dtype)


def _differentiable_sum(value: Tensor) -> Tensor:
    """All-reduce (sum) whose backward is again an all-reduce (sum) of the gradient."""
    return _AllReduceSum.apply(value)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, value: Tensor) -> Tensor:  # type: ignore[override]
        value = value.clone()
        dist.all_reduce(value)
        return value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _has_norm_act(module: nn.Module) -> bool:
    """A BatchNorm followed by its own dropout and activation (timm's ``BatchNormAct2d``)."""
    return isinstance(getattr(module, "drop", None), nn.Module) and isinstance(getattr(module, "act", None), nn.Module)


def _to_sync_batchnorm(model: nn.Module) -> nn.Module:
    """``nn.SyncBatchNorm`` for every BatchNorm; timm's converter where its BatchNormAct2d layers must keep their activations."""
    if any(isinstance(m, nn.BatchNorm2d) and _has_norm_act(m) for m in model.modules()):
        from timm.layers import convert_sync_batchnorm

        return convert_sync_batchnorm(model)
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm1d/2d for :class:`GlobalBatchNorm`, sharing its parameters and buffers (and a timm BatchNormAct2d's activation)."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        swapped = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if _has_norm_act(module):
            swapped.drop, swapped.act = module.drop, module.act
        if module.affine:
            swapped.weight, swapped.bias = module.weight, module.bias
        if module.track_running_stats:
            swapped.running_mean, swapped.running_var = module.running_mean, module.running_var
            swapped.num_batches_tracked = module.num_batches_tracked
        swapped.train(module.training)
        return swapped
    for name, child in module.named_children():
        module.add_module(name, _to_global_batchnorm(child))
    return module


def wrap_model(model: nn.Module, process: Process, sync_batchnorm: bool) -> nn.Module:
    """DistributedDataParallel around ``model`` (BatchNorm made global first), or ``model`` alone.

    The returned module is for the forward pass; keep ``model`` itself for checkpoints.
    """
    if not _active():
        return model
    if sync_batchnorm:
        if process.device.type == "cuda":
            model = _to_sync_batchnorm(model)
        else:
            model = _to_global_batchnorm(model)
    device_ids = [process.device.index] if process.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)

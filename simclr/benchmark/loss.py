"""NT-Xent forward+backward: ``simclr.loss.nt_xent`` against a plain torch version, side by side.

Both run in one process on the same (N, d) fp32 views, taking turns repetition by repetition,
so a busy machine slows both alike; each figure is the median (and the fastest) of its
repetitions. On CUDA the device is synchronised before and after every timed call, and the
peak memory of one call is what it allocates beyond its inputs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from simclr.benchmark.results import device_name
from simclr.loss import nt_xent

__all__ = ["bench_loss", "plain_nt_xent"]


def plain_nt_xent(z_a: Tensor, z_b: Tensor, temperature: float) -> Tensor:
    """The textbook NT-Xent in plain torch ops (the yardstick): mean loss over the 2N anchors."""
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_step(loss: Callable[[Tensor, Tensor], Tensor], z_a: Tensor, z_b: Tensor) -> float:
    """Seconds of one forward+backward, the device synchronised on both sides."""
    _synchronize(z_a.device)
    started = time.perf_counter()
    loss(z_a, z_b).backward()
    _synchronize(z_a.device)
    seconds = time.perf_counter() - started
    z_a.grad = z_b.grad = None
    return seconds


def _peak_gib(loss: Callable[[Tensor, Tensor], Tensor], z_a: Tensor, z_b: Tensor) -> float | None:
    """GiB one forward+backward allocates at its peak beyond what was allocated before (CUDA only)."""
    device = z_a.device
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    _timed_step(loss, z_a, z_b)
    return round((torch.cuda.max_memory_allocated(device) - baseline) / 2**30, 3)


def bench_loss(batch: int, device: str, dim: int = 128, chunk_rows: int | None = None, repeats: int = 5,
               temperature: float = 0.1) -> dict[str, object]:
    """One row: ms per forward+backward of ``nt_xent`` (``chunk_rows`` as given) and of :func:`plain_nt_xent`.

    ``ratio`` is ours / plain (median over ``repeats`` turns each, after a warm-up of each);
    ``peak_memory_gib`` and ``plain_peak_memory_gib`` are filled on CUDA.
    """
    target = torch.device(device)
    generator = torch.Generator(device=target).manual_seed(0)
    z_a = torch.randn(batch, dim, device=target, generator=generator, requires_grad=True)
    z_b = torch.randn(batch, dim, device=target, generator=generator, requires_grad=True)
    cases = {
        "ours": lambda a, b: nt_xent(a, b, temperature, chunk_rows=chunk_rows).loss,
        "plain": lambda a, b: plain_nt_xent(a, b, temperature),
    }
    for loss in cases.values():  # warm-up: kernels, allocator, page cache
        _timed_step(loss, z_a, z_b)
    peaks = {name: _peak_gib(loss, z_a, z_b) for name, loss in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, loss in cases.items():
            times[name].append(_timed_step(loss, z_a, z_b) * 1000)
    ours, plain = statistics.median(times["ours"]), statistics.median(times["plain"])
    return {
        "benchmark": "loss",
        "device": str(target),
        "device_name": device_name(target),
        "batch_size": batch,
        "dim": dim,
        "chunk_rows": chunk_rows,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "ms_forward_backward": round(ours, 2),
        "ms_forward_backward_min": round(min(times["ours"]), 2),
        "plain_ms": round(plain, 2),
        "plain_ms_min": round(min(times["plain"]), 2),
        "ratio": round(ours / plain, 3),
        "logits_matrix_gib": round((2 * batch) ** 2 * 4 / 2**30, 3),
        "peak_memory_gib": peaks["ours"],
        "plain_peak_memory_gib": peaks["plain"],
    }

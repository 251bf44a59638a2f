"""NT-Xent forward+backward time and peak memory at large batch, plain and chunked."""

from __future__ import annotations

import time

import torch

from simclr.loss import nt_xent


def bench_loss(batch: int, device: str, dim: int = 128, chunk_rows: int | None = None, repeats: int = 5) -> dict[str, object]:
    """Milliseconds per forward+backward of NT-Xent on (N, dim) fp32 views, and peak GPU memory.

    ``peak_memory_gib`` (CUDA only) counts what the loss allocates beyond its inputs; the
    plain path keeps one (2N, 2N) fp32 matrix for backward and builds its gradient.
    """
    target = torch.device(device)
    generator = torch.Generator(device=target).manual_seed(0)
    z_a = torch.randn(batch, dim, device=target, generator=generator, requires_grad=True)
    z_b = torch.randn(batch, dim, device=target, generator=generator, requires_grad=True)

    def step() -> None:
        loss = nt_xent(z_a, z_b, 0.1, chunk_rows=chunk_rows).loss
        loss.backward()
        z_a.grad = z_b.grad = None

    step()  # warm-up (kernels, allocator)
    if target.type == "cuda":
        torch.cuda.synchronize(target)
        torch.cuda.reset_peak_memory_stats(target)
        baseline = torch.cuda.memory_allocated(target)
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    if target.type == "cuda":
        torch.cuda.synchronize(target)
    milliseconds = (time.perf_counter() - started) / repeats * 1000
    peak = (torch.cuda.max_memory_allocated(target) - baseline) / 2**30 if target.type == "cuda" else None
    return {
        "benchmark": "loss",
        "device": str(target),
        "batch_size": batch,
        "dim": dim,
        "chunk_rows": chunk_rows,
        "ms_forward_backward": round(milliseconds, 2),
        "logits_matrix_gib": round((2 * batch) ** 2 * 4 / 2**30, 3),
        "peak_memory_gib": None if peak is None else round(peak, 3),
    }

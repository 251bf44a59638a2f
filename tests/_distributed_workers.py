"""Functions run inside spawned Gloo processes by tests/test_distributed.py (must be importable)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from simclr import distributed
from simclr.loss import nt_xent


def _join(rank: int, world: int, rendezvous: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)


def _detached_gather(local: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The classic bug: all_gather without a backward, so other ranks' gradients are lost."""
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.detach())
    parts[dist.get_rank()] = local
    return torch.cat(parts), dist.get_rank() * local.shape[0]


def loss_gradients(rank: int, world: int, rendezvous: Path, out_dir: Path) -> None:
    """Each rank takes its contiguous slice of a fixed global batch; saves loss and gradients."""
    _join(rank, world, rendezvous)
    generator = torch.Generator().manual_seed(0)
    z_a = torch.randn(8, 5, dtype=torch.float64, generator=generator)
    z_b = z_a + 0.3 * torch.randn(8, 5, dtype=torch.float64, generator=generator)
    rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
    results = {}
    for name, gather in (("with_grad", distributed.gather_with_grad), ("detached", _detached_gather)):
        local_a = z_a[rows].clone().requires_grad_(True)
        local_b = z_b[rows].clone().requires_grad_(True)
        out = nt_xent(local_a, local_b, temperature=0.2, gather=gather)
        # Each rank's share of the global mean: what DDP's gradient averaging amounts to.
        (out.loss / world).backward()
        results[name] = {
            "global_loss": distributed.all_reduce_mean(out.loss.detach()),
            "grad_a": local_a.grad,
            "grad_b": local_b.grad,
        }
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def batchnorm_gradients(rank: int, world: int, rendezvous: Path, out_dir: Path) -> None:
    """GlobalBatchNorm on this rank's rows of a fixed batch: output, input and parameter grads, running stats."""
    _join(rank, world, rendezvous)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64, generator=generator) * 3 + 1
    weights = torch.randn(8, 3, 4, 4, dtype=torch.float64, generator=generator)
    rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
    bn = distributed.GlobalBatchNorm(3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=generator)
        bn.bias.uniform_(-0.5, 0.5, generator=generator)
    local = x[rows].clone().requires_grad_(True)
    out = bn(local)
    ((out * weights[rows]).sum() / world).backward()
    grads = [distributed.all_reduce_sum(p.grad) for p in (bn.weight, bn.bias)]
    torch.save(
        {"out": out.detach(), "grad_x": local.grad, "grad_weight": grads[0], "grad_bias": grads[1],
         "running_mean": bn.running_mean, "running_var": bn.running_var},
        out_dir / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


def reference_batchnorm(world: int) -> dict[str, torch.Tensor]:
    """The same computation as ``batchnorm_gradients`` in one process with ``nn.BatchNorm2d``.

    The ranks' losses are shares of one objective (sum / world); so is this one.
    """
    generator = torch.Generator().manual_seed(1)
    x = (torch.randn(8, 3, 4, 4, dtype=torch.float64, generator=generator) * 3 + 1).requires_grad_(True)
    weights = torch.randn(8, 3, 4, 4, dtype=torch.float64, generator=generator)
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=generator)
        bn.bias.uniform_(-0.5, 0.5, generator=generator)
    out = bn(x)
    ((out * weights).sum() / world).backward()
    return {"out": out.detach(), "grad_x": x.grad, "grad_weight": bn.weight.grad, "grad_bias": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var}

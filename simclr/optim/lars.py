"""LARS: layer-wise adaptive rate scaling (You et al. 2017, arXiv 1708.03888).

SimCLR (Chen et al. 2020, arXiv 2002.05709, Section 2.3) trains with
LARS; this follows the update of the paper's reference implementation
(google-research/simclr ``lars_optimizer.py``) with classic momentum.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from simclr.errors import SimCLRError

__all__ = ["LARS"]


def _check_hparams(lr: float, momentum: float, weight_decay: float, eta: float) -> None:
    # `not (x >= 0)` style comparisons also reject NaN.
    if not (lr >= 0) or not math.isfinite(lr):
        raise SimCLRError(f"lr must be a finite number >= 0, got {lr}")
    if not (0 <= momentum < 1):
        raise SimCLRError(f"momentum must be in [0, 1), got {momentum}")
    if not (weight_decay >= 0) or not math.isfinite(weight_decay):
        raise SimCLRError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    if not (eta > 0) or not math.isfinite(eta):
        raise SimCLRError(f"eta must be a finite number > 0, got {eta}")


class LARS(torch.optim.Optimizer):
    """LARS with classic momentum, as used to train SimCLR (arXiv 2002.05709).

    For every parameter ``p`` with gradient ``g``:

    * ``p.ndim > 1`` (conv / linear weights) in a group with ``adapt=True`` (the default) is *adapted*:
      ``g <- g + weight_decay * p``;
      ``trust = eta * ||p|| / ||g||`` if both norms are > 0, else 1;
    * ``p.ndim <= 1`` (biases, BatchNorm affine) and every parameter of an ``adapt=False``
      group get no weight decay and ``trust = 1``, matching the reference's exclusion of bias,
      BN and supervised-head variables (plain momentum SGD);
    * ``buf <- momentum * buf + lr * trust * g``; ``p <- p - buf``.

    ``lr``, ``momentum``, ``weight_decay``, ``eta`` and ``adapt`` may be overridden per
    parameter group. Parameters without a gradient are skipped.

    Args:
        params: parameters or parameter-group dicts.
        lr: learning rate >= 0.
        momentum: in [0, 1).
        weight_decay: >= 0, applied to adapted (ndim > 1) parameters only.
        eta: trust coefficient > 0 (the reference's ``eeta``).

    Raises:
        SimCLRError: on an out-of-range hyper-parameter, here or in a group.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
    ) -> None:
        _check_hparams(lr, momentum, weight_decay, eta)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, adapt=True)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, validating its (possibly overridden) hyper-parameters."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _check_hparams(group["lr"], group["momentum"], group["weight_decay"], group["eta"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Apply one LARS update to every parameter that has a gradient.

        Each op runs once over all of a group's parameters of one device and dtype
        (``torch._foreach_*``), not once per parameter: on a GPU a ResNet-50's ~160 tensors
        take a handful of launches (on the CPU, about a megabyte of them at a time, kept in
        cache). Per element it is the same arithmetic as the formulas above.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for params in _by_device_and_dtype(p for p in group["params"] if p.grad is not None):
                if any(p.grad.is_sparse for p in params):
                    raise SimCLRError("LARS does not support sparse gradients")
                for bucket in _buckets(params):
                    adapted = [p for p in bucket if p.ndim > 1 and group["adapt"]]
                    plain = [p for p in bucket if not (p.ndim > 1 and group["adapt"])]
                    updates = _adapted_updates(adapted, group) + _plain_updates(plain, group["lr"])
                    self._apply_momentum(adapted + plain, updates, group["momentum"])
        return loss

    def _apply_momentum(self, params: list[Tensor], updates: list[Tensor], momentum: float) -> None:
        """``buf <- momentum * buf + update`` (a new buffer is the update itself); ``p <- p - buf``."""
        bufs, updated = [], []
        for p, update in zip(params, updates):
            state = self.state[p]
            if "momentum_buffer" in state:
                bufs.append(state["momentum_buffer"])
                updated.append(update)
            else:  # zero-initialised buffer, as the reference's momentum slot: buf = update
                state["momentum_buffer"] = update
        if bufs:
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, updated)
        if params:
            torch._foreach_sub_(params, [self.state[p]["momentum_buffer"] for p in params])


def _by_device_and_dtype(params: Iterable[Tensor]) -> list[list[Tensor]]:
    """Parameters in lists of one device and dtype each (what one foreach launch takes), order kept."""
    lists: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for p in params:
        lists.setdefault((p.device, p.dtype), []).append(p)
    return list(lists.values())


# On the CPU, the ops of an update run over a few parameters at a time, which stay in cache from
# the first op to the last (streaming a ResNet-50's 100 MB through memory once per op took 1.6x
# the per-parameter loop's time); launches cost nothing there.
_CPU_BUCKET_BYTES = 2**20


def _buckets(params: list[Tensor]) -> list[list[Tensor]]:
    """All of ``params`` at once on an accelerator; on the CPU, runs of about _CPU_BUCKET_BYTES."""
    if params[0].device.type != "cpu":
        return [params]
    buckets: list[list[Tensor]] = [[]]
    size = 0
    for p in params:
        if buckets[-1] and size + p.numel() * p.element_size() > _CPU_BUCKET_BYTES:
            buckets.append([])
            size = 0
        buckets[-1].append(p)
        size += p.numel() * p.element_size()
    return buckets


def _plain_updates(params: list[Tensor], lr: float) -> list[Tensor]:
    """``lr * g`` for each parameter that is not adapted, as new tensors."""
    return list(torch._foreach_mul([p.grad for p in params], lr)) if params else []


def _adapted_updates(params: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
    """``lr * trust * (g + weight_decay * p)`` for each adapted parameter, as new tensors.

    ``trust = eta * ||p|| / ||g + wd p||`` where both norms are > 0, else 1. On an accelerator the
    trust ratios stay on the device (no host sync); on the CPU they are read as numbers, which
    takes torch's fast path for a scalar factor. ``p.grad`` is left as the raw gradient.
    """
    if not params:
        return []
    grads = [p.grad for p in params]
    decayed = group["weight_decay"] != 0
    if decayed:  # new tensors, scaled in place below
        grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
    w_norms = torch.stack(torch._foreach_norm(params))
    g_norms = torch.stack(torch._foreach_norm(grads))
    trust = torch.where((w_norms > 0) & (g_norms > 0), group["eta"] * w_norms / g_norms, torch.ones_like(w_norms))
    scales = trust * group["lr"]
    factors = scales.tolist() if scales.device.type == "cpu" else list(scales.unbind())
    if decayed:
        torch._foreach_mul_(grads, factors)
        return grads
    return list(torch._foreach_mul(grads, factors))

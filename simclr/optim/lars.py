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
        """Apply one LARS update to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            weight_decay, eta = group["weight_decay"], group["eta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise SimCLRError("LARS does not support sparse gradients")

                if p.ndim > 1 and group["adapt"]:
                    # Out of place: p.grad must stay the raw gradient.
                    grad = grad.add(p, alpha=weight_decay) if weight_decay != 0 else grad
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    # A tensor-valued trust ratio avoids a host sync per parameter.
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        eta * w_norm / g_norm,
                        torch.ones_like(w_norm),
                    )
                    update = grad * (trust * lr)
                else:
                    update = grad * lr

                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    # Zero-initialised buffer, as the reference's momentum slot.
                    buf = update.clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(update)
                p.sub_(buf)
        return loss

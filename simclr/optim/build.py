"""Optimizer construction and weight-decay parameter groups for SimCLR training.

Chen et al. 2020 (arXiv 2002.05709), Section 2.3: LARS with weight decay 1e-6,
excluding biases and BatchNorm parameters from weight decay. Transformers (timm ViTs) also
exclude what their modules list in ``no_weight_decay()``: position embeddings, class tokens.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from simclr.errors import SimCLRError
from simclr.optim.lars import LARS

__all__ = ["OPTIMIZERS", "build_optimizer", "exempt_names", "parameter_groups"]

OPTIMIZERS = ("lars", "sgd", "adam", "adamw")


def exempt_names(model: nn.Module) -> set[str]:
    """Full names of the parameters ``model``'s modules exempt from weight decay (timm's ``no_weight_decay()``).

    timm modules return names relative to themselves (``pos_embed``, ``cls_token``); a name
    may also be a submodule's, exempting all of its parameters.
    """
    exempt: set[str] = set()
    for prefix, module in model.named_modules():
        listed = getattr(module, "no_weight_decay", None)
        if callable(listed):
            exempt |= {f"{prefix}.{name}" if prefix else name for name in listed()}
    return {name for name, _ in model.named_parameters() if name in exempt or any(name.startswith(f"{e}.") for e in exempt)}


def parameter_groups(model: nn.Module, weight_decay: float, plain: nn.Module | None = None) -> list[dict[str, Any]]:
    """Split trainable parameters of ``model`` into decayed and non-decayed groups.

    One rule: parameters with ``ndim <= 1`` (biases, norm-layer scales and
    shifts) get ``weight_decay = 0``; all others get ``weight_decay``. Parameters a
    module lists in ``no_weight_decay()`` (a ViT's position embeddings and class token,
    multi-dimensional) form a group with no weight decay and no LARS adaptation
    (``adapt=False``). Frozen parameters (``requires_grad=False``) are left out, and so
    are empty groups. ``plain``'s parameters (e.g. an online classifier, as in the
    paper's code) form a last group with no weight decay and no LARS adaptation.

    Returns:
        Up to four dicts ``{"params": list[Tensor], "weight_decay": float}``,
        decayed group first.

    Raises:
        SimCLRError: weight_decay < 0 or not finite.
    """
    if not (weight_decay >= 0) or not math.isfinite(weight_decay):
        raise SimCLRError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    decay: list[Tensor] = []
    no_decay: list[Tensor] = []
    exempt: list[Tensor] = []
    listed = exempt_names(model)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else exempt if name in listed else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": exempt, "weight_decay": 0.0, "adapt": False},
        {"params": [p for p in plain.parameters() if p.requires_grad] if plain else [], "weight_decay": 0.0, "adapt": False},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    name: str,
    params: Iterable[Tensor] | Iterable[dict[str, Any]],
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
) -> Optimizer:
    """Build an optimizer by name over parameters or parameter-group dicts.

    * ``"lars"``: :class:`~simclr.optim.lars.LARS` (eta 0.001); it never decays
      or adapts ``ndim <= 1`` parameters, so plain parameters or
      :func:`parameter_groups` output give the same updates.
    * ``"sgd"``: ``torch.optim.SGD`` with ``momentum``, ``nesterov=False``.
    * ``"adam"`` / ``"adamw"``: ``torch.optim.Adam`` / ``AdamW`` with default
      betas; ``momentum`` is ignored.

    ``weight_decay`` is the default; a group's own ``weight_decay`` wins.

    Raises:
        SimCLRError: unknown name, lr < 0, weight_decay < 0, momentum outside [0, 1).
    """
    if name not in OPTIMIZERS:
        raise SimCLRError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    if not (lr >= 0) or not math.isfinite(lr):
        raise SimCLRError(f"lr must be a finite number >= 0, got {lr}")
    if not (weight_decay >= 0) or not math.isfinite(weight_decay):
        raise SimCLRError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    if not (0 <= momentum < 1):
        raise SimCLRError(f"momentum must be in [0, 1), got {momentum}")

    params = list(params)
    if name == "lars":
        return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

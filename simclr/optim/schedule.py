"""Learning-rate scaling and the warm-up + cosine schedule of SimCLR.

Chen et al. 2020 (arXiv 2002.05709), Section 2.3: LR = 0.3 x BatchSize / 256
("linear"), linear warm-up for the first 10 epochs, then cosine decay without
restarts; Appendix B.1: LR = 0.075 x sqrt(BatchSize) ("sqrt").
"""

from __future__ import annotations

import math

from torch.optim import Optimizer

from simclr.errors import SimCLRError

__all__ = ["LR_RULES", "default_base_lr", "scaled_lr", "set_lr", "warmup_cosine_lr"]

LR_RULES = ("linear", "sqrt", "none")

# Base LR per optimizer and scaling rule. LARS/SGD use the paper's values; for
# "none" they take 0.3, the linear rule's value at batch 256. Adam(W) values are
# chosen so the scaled LR at batch 256 is 1e-3 under every rule.
_BASE_LR: dict[str, dict[str, float]] = {
    "lars": {"linear": 0.3, "sqrt": 0.075, "none": 0.3},
    "sgd": {"linear": 0.3, "sqrt": 0.075, "none": 0.3},
    "adam": {"linear": 1e-3, "sqrt": 1e-3 / 16.0, "none": 1e-3},
    "adamw": {"linear": 1e-3, "sqrt": 1e-3 / 16.0, "none": 1e-3},
}


def _check_rule(rule: str) -> None:
    if rule not in LR_RULES:
        raise SimCLRError(f"lr scaling rule must be one of {', '.join(LR_RULES)}, got {rule!r}")


def _check_nonneg(name: str, value: float) -> None:
    if not (value >= 0) or not math.isfinite(value):
        raise SimCLRError(f"{name} must be a finite number >= 0, got {value}")


def scaled_lr(base_lr: float, batch_size: int, rule: str) -> float:
    """Scale a base learning rate with the batch size (arXiv 2002.05709, 2.3 / B.1).

    ``"linear"``: ``base_lr * batch_size / 256``; ``"sqrt"``:
    ``base_lr * sqrt(batch_size)``; ``"none"``: ``base_lr``.

    Raises:
        SimCLRError: unknown rule, base_lr < 0, or batch_size < 1.
    """
    _check_rule(rule)
    _check_nonneg("base_lr", base_lr)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SimCLRError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if rule == "linear":
        return base_lr * batch_size / 256.0
    if rule == "sqrt":
        return base_lr * math.sqrt(batch_size)
    return float(base_lr)


def default_base_lr(optimizer: str, rule: str) -> float:
    """Default base LR to feed :func:`scaled_lr` for an optimizer and rule.

    * ``"lars"``, ``"sgd"``: linear 0.3, sqrt 0.075 (the paper's values,
      arXiv 2002.05709 Section 2.3 and Appendix B.1); none 0.3.
    * ``"adam"``, ``"adamw"``: linear 1e-3, sqrt 6.25e-5 (= 1e-3 / sqrt(256)),
      none 1e-3, i.e. 1e-3 at batch size 256 under every rule.

    Raises:
        SimCLRError: unknown optimizer or rule.
    """
    if optimizer not in _BASE_LR:
        raise SimCLRError(f"optimizer must be one of {', '.join(_BASE_LR)}, got {optimizer!r}")
    _check_rule(rule)
    return _BASE_LR[optimizer][rule]


def warmup_cosine_lr(
    step: int,
    total_steps: int,
    warmup_steps: int,
    peak_lr: float,
    final_lr: float = 0.0,
) -> float:
    """Learning rate at ``step`` (0-based) of linear warm-up then cosine decay.

    * ``step < warmup_steps``: ``peak_lr * (step + 1) / warmup_steps``, so the
      first step is already non-zero and step ``warmup_steps - 1`` reaches peak;
    * ``warmup_steps <= step < total_steps``:
      ``final + 0.5 (peak - final) (1 + cos(pi (step - warmup) / max(1, total - warmup)))``;
    * ``step >= total_steps``: ``final_lr``.

    Follows arXiv 2002.05709 Section 2.3 (warm-up, then cosine decay without restarts).

    Raises:
        SimCLRError: step < 0, total_steps < 1, warmup_steps outside
            [0, total_steps], or a negative / non-finite LR.
    """
    if step < 0:
        raise SimCLRError(f"step must be >= 0, got {step}")
    if total_steps < 1:
        raise SimCLRError(f"total_steps must be >= 1, got {total_steps}")
    if not (0 <= warmup_steps <= total_steps):
        raise SimCLRError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
    _check_nonneg("peak_lr", peak_lr)
    _check_nonneg("final_lr", final_lr)

    if step >= total_steps:
        return float(final_lr)
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Set every group's ``lr`` to ``lr * group.get("lr_scale", 1.0)``.

    ``lr_scale`` lets a group (e.g. a linear probe head) follow the shared
    schedule at a fixed multiple.

    Raises:
        SimCLRError: lr < 0 or not finite.
    """
    _check_nonneg("lr", lr)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)

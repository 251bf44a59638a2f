"""Argument checks shared by the augmentation modules; each raises a one-line SimCLRError."""

from __future__ import annotations

import math

from torch import Tensor

from simclr.errors import SimCLRError


def check_int_at_least(name: str, value: object, low: int) -> int:
    """Return ``value`` as an int if it is an integer ``>= low``, else raise SimCLRError."""
    # bool is an int subclass, but ``size=True`` is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SimCLRError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a finite float, else raise SimCLRError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SimCLRError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1], else raise SimCLRError."""
    p = check_real(name, value)
    if not 0.0 <= p <= 1.0:
        raise SimCLRError(f"{name} must be a probability in [0, 1], got {value!r}")
    return p


def check_pair(name: str, value: object) -> tuple[float, float]:
    """Return ``value`` as a ``(lo, hi)`` pair of finite floats with ``lo <= hi``."""
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise SimCLRError(f"{name} must be a pair (lo, hi), got {value!r}") from None
    lo_f, hi_f = check_real(name, lo), check_real(name, hi)
    if lo_f > hi_f:
        raise SimCLRError(f"{name} must satisfy lo <= hi, got {value!r}")
    return lo_f, hi_f


def check_rgb_image(name: str, image: object) -> Tensor:
    """Return ``image`` if it is a tensor of shape [3, H, W] with H, W >= 1."""
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise SimCLRError(f"{name} must be a tensor of shape [3, H, W], got {shape}")
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise SimCLRError(f"{name} must have height and width >= 1, got {tuple(image.shape)}")
    return image

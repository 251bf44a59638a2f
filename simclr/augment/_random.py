"""Draws from an explicit CPU ``torch.Generator``; nothing here touches a global RNG."""

from __future__ import annotations

import math

import torch


def rand(generator: torch.Generator) -> float:
    """One uniform float in [0, 1)."""
    # float64 so that rates like p=0.8 are not quantised by float32 spacing.
    return float(torch.rand((), generator=generator, dtype=torch.float64).item())


def uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    """One uniform float in [lo, hi)."""
    return lo + (hi - lo) * rand(generator)


def randint(generator: torch.Generator, high: int) -> int:
    """One uniform integer in [0, high)."""
    return int(torch.randint(0, high, (1,), generator=generator).item())


def randperm(n: int, generator: torch.Generator) -> tuple[int, ...]:
    """A uniform random permutation of range(n)."""
    return tuple(int(i) for i in torch.randperm(n, generator=generator).tolist())


def sample_resized_crop(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop, as torchvision's RandomResizedCrop.get_params.

    Area fraction ~ U(scale), log aspect (w/h) ~ U(log ratio); 10 attempts to fit the
    ``height`` x ``width`` image, then a central crop with the aspect clamped into ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target_area = area * uniform(generator, scale[0], scale[1])
        aspect = math.exp(uniform(generator, log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = randint(generator, height - h + 1)
            left = randint(generator, width - w + 1)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    # Rounding can push a side past the image (or to 0) for tiny images; keep it inside.
    h, w = max(1, min(h, height)), max(1, min(w, width))
    return (height - h) // 2, (width - w) // 2, h, w

"""Small image helpers shared by the augment and data test files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from simclr.augment import ViewParams, ViewTransform, make_generator


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)


def save_image(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def solid_rgb(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Image.Image:
    return Image.new("RGB", size, color)


def natural_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 [n, 3, h, w]: smooth colour fields plus mild noise, like photos at low resolution."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 5, 5, generator=g)
    x = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    x = x + 0.04 * torch.randn(n, 3, h, w, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def per_image_params(
    view_a: ViewTransform, view_b: ViewTransform, seeds: list[int], h: int, w: int
) -> list[tuple[ViewParams, ViewParams]]:
    """What TwoViewTransform draws: both views from one generator per seed, a then b."""
    out = []
    for seed in seeds:
        g = make_generator(seed)
        out.append((view_a.sample(h, w, g), view_b.sample(h, w, g)))
    return out



def identity_params(h: int, w: int, **changes: object) -> ViewParams:
    """Params that only crop the full image; ``changes`` switch individual ops on."""
    base = ViewParams(
        crop=(0, 0, h, w), flip=False, color_applied=False, color_order=(0, 1, 2, 3),
        brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, grayscale=False,
        blur_applied=False, blur_sigma=0.0, solarize=False,
    )  # fmt: skip
    return replace(base, **changes)


"""Small image and view-parameter helpers shared by the augment and data test files."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from simclr.augment import ViewParams, sample_keys


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


_DTYPES = {"crop": np.int64, "color_order": np.int64}
_FLAGS = {"flip", "color_applied", "grayscale", "blur_applied", "solarize"}


def identity_params(h: int | None, w: int | None, **changes: object) -> ViewParams:
    """One row of params that only crop the full h x w image (``h=None``: no crop, the image
    is the view already); ``changes`` (scalars, tuples) switch individual ops on."""
    base: dict[str, object] = {
        "crop": None if h is None else (0, 0, h, w), "flip": False, "color_applied": False,
        "color_order": (0, 1, 2, 3), "brightness": 1.0, "contrast": 1.0, "saturation": 1.0,
        "hue": 0.0, "grayscale": False, "blur_applied": False, "blur_sigma": 0.0,
        "solarize": False,
    }  # fmt: skip
    base.update(changes)
    rows = {}
    for name, value in base.items():
        dtype = _DTYPES.get(name, bool if name in _FLAGS else np.float64)
        rows[name] = None if value is None else np.asarray(value, dtype=dtype)[None]
    return ViewParams(**rows)  # type: ignore[arg-type]


def stack_params(params: list[ViewParams]) -> ViewParams:
    """Rows of several ViewParams, in order, as one ViewParams."""
    out = {}
    for f in fields(ViewParams):
        parts = [getattr(p, f.name) for p in params]
        out[f.name] = None if parts[0] is None else np.concatenate(parts)
    return ViewParams(**out)


def assert_params_equal(a: ViewParams, b: ViewParams, skip: tuple[str, ...] = ()) -> None:
    """Every field of ``a`` and ``b`` (but ``skip``) identical: values, dtype and shape."""
    assert len(a) == len(b)
    for f in fields(ViewParams):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x is None or y is None:
            assert x is None and y is None, f.name
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, f.name
        np.testing.assert_array_equal(x, y, err_msg=f.name)


# Rendering tolerance. The batched ops compute the same formulas in another order (resize
# weights summed by a matmul, hue through a branch-free HSV map), so float32 results differ
# by rounding: seen <= 5e-6. 1e-5 is ~80 float32 ulps at 1.0 and 400x below one uint8 step.
ATOL = 1e-5


def keys_for(n: int, seed: int = 0) -> np.ndarray:
    """Sample keys of indices 0..n-1 in epoch 3 of run ``seed``."""
    return sample_keys(seed, 3, np.arange(n))

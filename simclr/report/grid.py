"""A PNG grid of originals and their augmented views, for eyeballing an augmentation setup."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

from simclr.augment._checks import check_int_at_least, check_rgb_image
from simclr.augment.keys import sample_key
from simclr.augment.two_view import TwoViewTransform
from simclr.errors import SimCLRError


def _fit_longer_side(image: Tensor, size: int) -> Tensor:
    """uint8 [3, H, W] -> float32 [3, h, w] in [0, 1] with max(h, w) == size, aspect kept."""
    x = image.float().div_(255.0) if image.dtype == torch.uint8 else image.to(torch.float32)
    height, width = x.shape[-2:]
    scale = size / max(height, width)
    new_hw = [max(1, round(height * scale)), max(1, round(width * scale))]
    return TF.resize(x, new_hw, InterpolationMode.BILINEAR, antialias=True).clamp(0.0, 1.0)


def _to_hwc(image: Tensor) -> Tensor:
    return image.detach().cpu().permute(1, 2, 0).numpy()


def save_augmentation_grid(
    images: Sequence[Tensor],
    transform: TwoViewTransform,
    path: str | Path,
    seed: int = 0,
    views_per_image: int = 4,
) -> Path:
    """Render one row per image: the original, then ``views_per_image`` augmented views.

    ``images`` are uint8 tensors [3, H, W]. Views come in pairs from ``transform``; the
    pair ``k`` of row ``r`` uses seed ``sample_key(seed, 0, r * pairs_per_row + k)``, so
    the grid is reproducible. Writes a PNG (parent directories created) and returns its path.
    """
    if isinstance(transform, type) or not isinstance(transform, TwoViewTransform):
        raise SimCLRError(f"transform must be a TwoViewTransform, got {type(transform).__name__}")
    views_per_image = check_int_at_least("views_per_image", views_per_image, 1)
    checked = [check_rgb_image(f"images[{i}]", img) for i, img in enumerate(images)]
    if not checked:
        raise SimCLRError("images must contain at least 1 image, got 0")
    # Imported here so importing the package never selects a matplotlib backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pairs_per_row = math.ceil(views_per_image / 2)
    rows, cols = len(checked), 1 + views_per_image
    fig = Figure(figsize=(1.6 * cols, 1.75 * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, image in enumerate(checked):
        views: list[Tensor] = []
        for k in range(pairs_per_row):
            views.extend(transform(image, sample_key(seed, 0, r * pairs_per_row + k)))
        panels = [_fit_longer_side(image, transform.size)] + views[:views_per_image]
        titles = ["original"] + [f"view {i + 1}" for i in range(views_per_image)]
        for ax, panel, title in zip(axes[r], panels, titles):
            ax.imshow(_to_hwc(panel), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    fig.tight_layout()

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out

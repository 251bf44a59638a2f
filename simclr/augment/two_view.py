"""The SimCLR pair of views from one sample key, and the deterministic evaluation transform."""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

from simclr.augment._checks import check_int_at_least, check_rgb_image
from simclr.augment.view import ViewTransform
from simclr.errors import SimCLRError


class ViewPair:
    """The two ``ViewTransform``s of a positive pair (``view_b`` defaults to ``view_a``)."""

    def __init__(self, view_a: ViewTransform, view_b: ViewTransform | None = None) -> None:
        if not isinstance(view_a, ViewTransform):
            raise SimCLRError(f"view_a must be a ViewTransform, got {type(view_a).__name__}")
        view_b = view_a if view_b is None else view_b
        if not isinstance(view_b, ViewTransform):
            raise SimCLRError(f"view_b must be a ViewTransform, got {type(view_b).__name__}")
        if view_a.size != view_b.size:  # views are stacked into one batch, so they share a shape
            raise SimCLRError(f"view_b.size must equal view_a.size ({view_a.size}), got {view_b.size}")
        self.view_a, self.view_b = view_a, view_b

    @property
    def size(self) -> int:
        """Side length of each output view."""
        return self.view_a.size

    def __repr__(self) -> str:
        views = repr(self.view_a) if self.view_b is self.view_a else f"view_a={self.view_a!r}, view_b={self.view_b!r}"
        return f"{type(self).__name__}({views})"


class TwoViewTransform(ViewPair):
    """Two augmented views of one image, fully determined by its sample key.

    ``view_a`` draws view 0 and ``view_b`` (default: ``view_a``) view 1 of the key
    (``simclr.augment.keys``), so the two are independent yet reproducible. This is the
    per-image pipeline: the batch of one of ``BatchedTwoViewTransform``, same parameters.
    """

    def __call__(self, image: Tensor, key: int) -> tuple[Tensor, Tensor]:
        """uint8 [3, H, W] and a key in [0, 2**64) -> two float32 [3, size, size] in [0, 1]."""
        image = check_rgb_image("image", image)
        return self.view_a(image, key, 0), self.view_b(image, key, 1)


class EvalTransform:
    """Deterministic evaluation transform: resize shorter side to ``size``, centre crop.

    Input: uint8 [3, H, W] (or float in [0, 1]). Output: float32 [3, size, size] in [0, 1].
    """

    def __init__(self, size: int) -> None:
        self.size = check_int_at_least("size", size, 1)

    def __repr__(self) -> str:
        return f"EvalTransform(size={self.size})"

    def __call__(self, image: Tensor) -> Tensor:
        """uint8 [3, H, W] -> float32 [3, size, size] in [0, 1]."""
        image = check_rgb_image("image", image)
        x = image.float().div_(255.0) if image.dtype == torch.uint8 else image.to(torch.float32)
        x = TF.resize(x, [self.size], InterpolationMode.BILINEAR, antialias=True)
        x = TF.center_crop(x, [self.size, self.size])
        return x.clamp(0.0, 1.0).contiguous()

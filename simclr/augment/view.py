"""One SimCLR view: random crop, flip, colour distortion, grayscale, blur, solarize.

All randomness comes from an explicit ``torch.Generator`` so that a view is a pure
function of (image, generator state); the global torch RNG and Python's ``random``
are never touched, which keeps results independent of worker count and process.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

from simclr.augment._checks import (
    check_int_at_least,
    check_pair,
    check_probability,
    check_real,
    check_rgb_image,
)
from simclr.augment._random import rand, randperm, sample_resized_crop, uniform
from simclr.errors import SimCLRError

BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
_IDENTITY_ORDER = (BRIGHTNESS, CONTRAST, SATURATION, HUE)


@dataclass(frozen=True)
class ViewParams:
    """Everything sampled for one view; ``ViewTransform.apply`` is a pure function of it.

    ``crop`` is (top, left, height, width) in source pixels. Colour factors are
    multiplicative (1.0 = identity) except ``hue``, an additive shift in [-0.5, 0.5]
    (0.0 = identity); when ``color_applied`` is False they hold the identity values.
    ``color_order`` is a permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue).
    ``blur_sigma`` is 0.0 when ``blur_applied`` is False.
    """

    crop: tuple[int, int, int, int]
    flip: bool
    color_applied: bool
    color_order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float
    grayscale: bool
    blur_applied: bool
    blur_sigma: float
    solarize: bool


def _odd_kernel_size(size: int, frac: float) -> int:
    k = max(3, int(round(frac * size)))
    if k % 2 == 0:
        k += 1
    # Reflect padding needs pad (= k // 2) < image side, so tiny outputs get a smaller kernel.
    return min(k, 2 * size - 1)


class ViewTransform:
    """Per-image SimCLR augmentation (paper Appendix A; order as in SimCLR/BYOL).

    Input: uint8 tensor [3, H, W] (any H, W >= 1; a float tensor in [0, 1] is also
    accepted). Output: float32 tensor [3, size, size] with values in [0, 1].
    ``blur_p=None`` picks 0.5 for ``size > 32`` and 0.0 otherwise (the paper drops
    blur for CIFAR-sized images). ``solarize_threshold`` is on the uint8 scale.
    """

    def __init__(
        self,
        size: int,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        color_strength: float = 1.0,
        color_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float | None = None,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel_frac: float = 0.1,
        solarize_p: float = 0.0,
        solarize_threshold: float = 128,
    ) -> None:
        self.size = check_int_at_least("size", size, 1)
        self.crop_scale = check_pair("crop_scale", crop_scale)
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise SimCLRError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale!r}")
        self.crop_ratio = check_pair("crop_ratio", crop_ratio)
        if self.crop_ratio[0] <= 0.0:
            raise SimCLRError(f"crop_ratio must satisfy 0 < lo <= hi, got {crop_ratio!r}")
        self.flip_p = check_probability("flip_p", flip_p)
        self.color_strength = check_real("color_strength", color_strength)
        if self.color_strength < 0.0:
            raise SimCLRError(f"color_strength must be >= 0, got {color_strength!r}")
        self.color_p = check_probability("color_p", color_p)
        self.gray_p = check_probability("gray_p", gray_p)
        auto_blur = 0.5 if self.size > 32 else 0.0
        self.blur_p = auto_blur if blur_p is None else check_probability("blur_p", blur_p)
        self.blur_sigma = check_pair("blur_sigma", blur_sigma)
        if self.blur_sigma[0] <= 0.0:
            raise SimCLRError(f"blur_sigma must satisfy 0 < lo <= hi, got {blur_sigma!r}")
        frac = check_real("blur_kernel_frac", blur_kernel_frac)
        if not 0.0 < frac <= 1.0:
            raise SimCLRError(f"blur_kernel_frac must be in (0, 1], got {blur_kernel_frac!r}")
        self.blur_kernel_size = _odd_kernel_size(self.size, frac)
        self.solarize_p = check_probability("solarize_p", solarize_p)
        threshold = check_real("solarize_threshold", solarize_threshold)
        if not 0.0 <= threshold <= 255.0:
            raise SimCLRError(f"solarize_threshold must be in [0, 255], got {solarize_threshold!r}")
        self.solarize_threshold = threshold

        s = self.color_strength
        # Paper: ColorJitter(0.8s, 0.8s, 0.8s, 0.2s); hue is capped by adjust_hue's domain.
        self._jitter_range = (max(0.0, 1.0 - 0.8 * s), 1.0 + 0.8 * s)
        self._hue_max = min(0.2 * s, 0.5)

    def __repr__(self) -> str:
        return (
            f"ViewTransform(size={self.size}, crop_scale={self.crop_scale}, "
            f"crop_ratio={self.crop_ratio}, flip_p={self.flip_p}, "
            f"color_strength={self.color_strength}, color_p={self.color_p}, "
            f"gray_p={self.gray_p}, blur_p={self.blur_p}, blur_sigma={self.blur_sigma}, "
            f"blur_kernel_size={self.blur_kernel_size}, solarize_p={self.solarize_p}, "
            f"solarize_threshold={self.solarize_threshold})"
        )

    def sample_crop(
        self, height: int, width: int, generator: torch.Generator
    ) -> tuple[int, int, int, int]:
        """(top, left, h, w) sampled as torchvision's RandomResizedCrop.get_params does."""
        return sample_resized_crop(height, width, self.crop_scale, self.crop_ratio, generator)

    def sample(self, height: int, width: int, generator: torch.Generator) -> ViewParams:
        """Draw every random choice for one view of a ``height`` x ``width`` source image.

        ``generator`` must be a CPU ``torch.Generator``; it is the only source of randomness.
        """
        height = check_int_at_least("height", height, 1)
        width = check_int_at_least("width", width, 1)
        crop = self.sample_crop(height, width, generator)
        flip = rand(generator) < self.flip_p

        color_applied = rand(generator) < self.color_p
        order, factors, hue = _IDENTITY_ORDER, (1.0, 1.0, 1.0), 0.0
        if color_applied:
            order = randperm(4, generator)
            factors = (
                uniform(generator, *self._jitter_range),
                uniform(generator, *self._jitter_range),
                uniform(generator, *self._jitter_range),
            )
            hue = uniform(generator, -self._hue_max, self._hue_max)

        grayscale = rand(generator) < self.gray_p
        blur_applied = rand(generator) < self.blur_p
        sigma = uniform(generator, *self.blur_sigma) if blur_applied else 0.0
        solarize = rand(generator) < self.solarize_p
        return ViewParams(
            crop=crop,
            flip=flip,
            color_applied=color_applied,
            color_order=order,
            brightness=factors[0],
            contrast=factors[1],
            saturation=factors[2],
            hue=hue,
            grayscale=grayscale,
            blur_applied=blur_applied,
            blur_sigma=sigma,
            solarize=solarize,
        )

    def apply(self, image: Tensor, params: ViewParams) -> Tensor:
        """Apply ``params`` to ``image`` (uint8 [3, H, W]) -> float32 [3, size, size] in [0, 1]."""
        image = check_rgb_image("image", image)
        top, left, h, w = params.crop
        height, width = image.shape[-2:]
        if h < 1 or w < 1 or top < 0 or left < 0 or top + h > height or left + w > width:
            raise SimCLRError(
                f"params.crop {params.crop} does not fit an image of {height}x{width}"
            )
        x = image[:, top : top + h, left : left + w]
        # Convert after cropping: fewer pixels to convert, and every later op is exact in float.
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)
        x = TF.resize(x, [self.size, self.size], InterpolationMode.BILINEAR, antialias=True)
        x = x.clamp(0.0, 1.0)
        if params.flip:
            x = x.flip(-1)
        if params.color_applied:
            for op in params.color_order:
                x = self._color_op(x, op, params)
        if params.grayscale:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if params.blur_applied:
            k = self.blur_kernel_size
            x = TF.gaussian_blur(x, [k, k], [params.blur_sigma, params.blur_sigma])
        if params.solarize:
            x = torch.where(x >= self.solarize_threshold / 255.0, 1.0 - x, x)
        # Blur and hue round-trips can overshoot [0, 1] by an ulp; solarize would then go < 0.
        return x.clamp(0.0, 1.0).contiguous()

    @staticmethod
    def _color_op(x: Tensor, op: int, params: ViewParams) -> Tensor:
        if op == BRIGHTNESS:
            return TF.adjust_brightness(x, params.brightness)
        if op == CONTRAST:
            return TF.adjust_contrast(x, params.contrast)
        if op == SATURATION:
            return TF.adjust_saturation(x, params.saturation)
        if op == HUE:
            return TF.adjust_hue(x, params.hue)
        raise SimCLRError(f"params.color_order entries must be in 0..3, got {params.color_order}")

    def __call__(self, image: Tensor, generator: torch.Generator) -> Tensor:
        """Sample with ``generator``, then apply: uint8 [3, H, W] -> float32 [3, size, size]."""
        image = check_rgb_image("image", image)
        params = self.sample(int(image.shape[-2]), int(image.shape[-1]), generator)
        return self.apply(image, params)

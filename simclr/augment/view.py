"""One SimCLR view: random crop, flip, colour distortion, grayscale, blur, solarize.

Every random choice is drawn from the sample's key (``keys``), so a view is a pure function
of (image, key, view); no global RNG is touched, which keeps views independent of worker
count, process count and batch composition. ``ViewTransform.sample`` draws a whole batch at
once; the per-image pipeline is the batch of one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
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
from simclr.augment.keys import as_keys, uniforms
from simclr.errors import SimCLRError

BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
CROP_ATTEMPTS = 10
CROP_SLOTS = 4 * CROP_ATTEMPTS  # draws 0-39: (area, aspect, top, left) per attempt
# Draws 40-53: flip, colour on, 4 for the colour order, 3 factors, hue, grayscale, blur on,
# blur sigma, solarize.
PHOTOMETRIC_SLOTS = 14
_REPR_FIELDS = ("size", "crop", "crop_scale", "crop_ratio", "flip_p", "color_strength", "color_p", "gray_p", "blur_p",
                "blur_sigma", "blur_kernel_size", "solarize_p", "solarize_threshold")


@dataclass(frozen=True)
class ViewParams:
    """Everything sampled for B views (row i: sample i); rendering is a pure function of it.

    ``crop`` int64 [B, 4] is (top, left, height, width) in source pixels, or None when the
    views were cropped already (in loader workers). Colour factors float64 [B] are
    multiplicative (1.0 = identity) except ``hue``, an additive shift in [-0.5, 0.5]; they
    hold identity values where ``color_applied`` is False. ``color_order`` int64 [B, 4] is a
    permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue). ``blur_sigma`` is 0.0
    where ``blur_applied`` is False. The flags are bool [B].
    """

    crop: np.ndarray | None
    flip: np.ndarray
    color_applied: np.ndarray
    color_order: np.ndarray
    brightness: np.ndarray
    contrast: np.ndarray
    saturation: np.ndarray
    hue: np.ndarray
    grayscale: np.ndarray
    blur_applied: np.ndarray
    blur_sigma: np.ndarray
    solarize: np.ndarray

    def __len__(self) -> int:
        return int(self.flip.shape[0])

    def take(self, rows: np.ndarray | list[int]) -> ViewParams:
        """The params of ``rows`` only, in that order."""
        return ViewParams(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[rows]
                             for f in fields(self)})


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
    ``crop=False`` turns the random crop off: each view is the image's largest centred
    square (the whole image when it is square) resized, as evaluation sees it; every
    other op keeps its own draws. Every other op is off at probability 0.
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
        crop: bool = True,
    ) -> None:
        self.size = check_int_at_least("size", size, 1)
        _require(isinstance(crop, bool), f"crop must be True or False, got {crop!r}")
        self.crop = crop
        self.crop_scale = check_pair("crop_scale", crop_scale)
        _require(0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0, f"crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale!r}")
        self.crop_ratio = check_pair("crop_ratio", crop_ratio)
        _require(self.crop_ratio[0] > 0.0, f"crop_ratio must satisfy 0 < lo <= hi, got {crop_ratio!r}")
        self.flip_p = check_probability("flip_p", flip_p)
        self.color_strength = check_real("color_strength", color_strength)
        _require(self.color_strength >= 0.0, f"color_strength must be >= 0, got {color_strength!r}")
        self.color_p = check_probability("color_p", color_p)
        self.gray_p = check_probability("gray_p", gray_p)
        auto_blur = 0.5 if self.size > 32 else 0.0
        self.blur_p = auto_blur if blur_p is None else check_probability("blur_p", blur_p)
        self.blur_sigma = check_pair("blur_sigma", blur_sigma)
        _require(self.blur_sigma[0] > 0.0, f"blur_sigma must satisfy 0 < lo <= hi, got {blur_sigma!r}")
        frac = check_real("blur_kernel_frac", blur_kernel_frac)
        _require(0.0 < frac <= 1.0, f"blur_kernel_frac must be in (0, 1], got {blur_kernel_frac!r}")
        self.blur_kernel_size = _odd_kernel_size(self.size, frac)
        self.solarize_p = check_probability("solarize_p", solarize_p)
        self.solarize_threshold = check_real("solarize_threshold", solarize_threshold)
        _require(0.0 <= self.solarize_threshold <= 255.0, f"solarize_threshold must be in [0, 255], got {solarize_threshold!r}")

        s = self.color_strength
        # Paper: ColorJitter(0.8s, 0.8s, 0.8s, 0.2s); hue is capped by adjust_hue's domain.
        self._jitter_range = (max(0.0, 1.0 - 0.8 * s), 1.0 + 0.8 * s)
        self._hue_max = min(0.2 * s, 0.5)

    def __repr__(self) -> str:
        return f"ViewTransform({', '.join(f'{name}={getattr(self, name)}' for name in _REPR_FIELDS)})"

    def sample(
        self, keys: object, view: int = 0, heights: object = None, widths: object = None
    ) -> ViewParams:
        """Draw view ``view`` (0 or 1) of each sample key; B keys give B rows.

        ``heights``/``widths`` (ints or [B]) are the source sizes the crops are drawn for;
        without them ``crop`` is None (the loader crops). The draws depend on the key,
        the view and the op alone, never on the other samples of the batch.
        """
        keys, view = as_keys(keys), _check_view(view)
        crop = None
        if heights is not None or widths is not None:
            crop = self.sample_crops(keys, view, heights, widths)
        u = uniforms(keys, view, CROP_SLOTS, PHOTOMETRIC_SLOTS)
        color = u[:, 1] < self.color_p
        lo, hi = self._jitter_range
        factors = np.where(color[:, None], lo + (hi - lo) * u[:, 6:9], 1.0)
        hue = np.where(color, self._hue_max * (2.0 * u[:, 9] - 1.0), 0.0)
        blur = u[:, 11] < self.blur_p
        s_lo, s_hi = self.blur_sigma
        return ViewParams(
            crop=crop,
            flip=u[:, 0] < self.flip_p,
            color_applied=color,
            # argsort of 4 uniforms is a uniform permutation; identity where colour is off
            color_order=np.where(color[:, None], np.argsort(u[:, 2:6], axis=1, kind="stable"), np.arange(4)),
            brightness=factors[:, 0],
            contrast=factors[:, 1],
            saturation=factors[:, 2],
            hue=hue,
            grayscale=u[:, 10] < self.gray_p,
            blur_applied=blur,
            blur_sigma=np.where(blur, s_lo + (s_hi - s_lo) * u[:, 12], 0.0),
            solarize=u[:, 13] < self.solarize_p,
        )

    def sample_crops(self, keys: object, view: int, heights: object, widths: object) -> np.ndarray:
        """int64 [B, 4] (top, left, h, w): torchvision's RandomResizedCrop.get_params per key.

        Area fraction ~ U(crop_scale), log aspect ~ U(log crop_ratio); the first of 10
        attempts that fits the source, else a central crop with the aspect clamped.
        """
        keys, view = as_keys(keys), _check_view(view)
        height, width = _sizes("heights", heights, len(keys)), _sizes("widths", widths, len(keys))
        if not self.crop:  # no random crop: the largest centred square (its draws stay unread)
            side = np.minimum(height, width)
            return np.stack([(height - side) // 2, (width - side) // 2, side, side], axis=1)
        u = uniforms(keys, view, 0, CROP_SLOTS).reshape(len(keys), CROP_ATTEMPTS, 4)
        (s_lo, s_hi), (r_lo, r_hi) = self.crop_scale, self.crop_ratio
        area = (height * width)[:, None] * (s_lo + (s_hi - s_lo) * u[..., 0])
        aspect = np.exp(math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * u[..., 1])
        w = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        h = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (w > 0) & (w <= width[:, None]) & (h > 0) & (h <= height[:, None])
        top = np.floor(u[..., 2] * (height[:, None] - h + 1)).astype(np.int64)
        left = np.floor(u[..., 3] * (width[:, None] - w + 1)).astype(np.int64)
        first = fits.argmax(axis=1)
        rows = np.arange(len(keys))
        crops = np.stack([top, left, h, w], axis=-1)[rows, first]
        none_fit = ~fits.any(axis=1)
        if none_fit.any():
            crops[none_fit] = _central_crops(height[none_fit], width[none_fit], r_lo, r_hi)
        return crops

    def apply(self, image: Tensor, params: ViewParams, row: int = 0) -> Tensor:
        """Render row ``row`` of ``params`` on ``image`` (uint8 [3, H, W]) -> float32 [3, size, size].

        The per-image reference renderer (torchvision ops); a ``params.crop`` of None means
        ``image`` is already the cropped view at ``size`` x ``size``.
        """
        image = check_rgb_image("image", image)
        x = image
        if params.crop is not None:
            top, left, h, w = (int(v) for v in params.crop[row])
            height, width = image.shape[-2:]
            if h < 1 or w < 1 or top < 0 or left < 0 or top + h > height or left + w > width:
                raise SimCLRError(f"crop {(top, left, h, w)} does not fit an image of {height}x{width}")
            x = image[:, top : top + h, left : left + w]
        # Convert after cropping: fewer pixels to convert, and every later op is exact in float.
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)
        if params.crop is not None or tuple(x.shape[-2:]) != (self.size, self.size):
            x = TF.resize(x, [self.size, self.size], InterpolationMode.BILINEAR, antialias=True)
        x = x.clamp(0.0, 1.0)
        if params.flip[row]:
            x = x.flip(-1)
        if params.color_applied[row]:
            for op in params.color_order[row].tolist():
                x = self._color_op(x, op, params, row)
        if params.grayscale[row]:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if params.blur_applied[row]:
            k, sigma = self.blur_kernel_size, float(params.blur_sigma[row])
            x = TF.gaussian_blur(x, [k, k], [sigma, sigma])
        if params.solarize[row]:
            x = torch.where(x >= self.solarize_threshold / 255.0, 1.0 - x, x)
        # Blur and hue round-trips can overshoot [0, 1] by an ulp; solarize would then go < 0.
        return x.clamp(0.0, 1.0).contiguous()

    @staticmethod
    def _color_op(x: Tensor, op: int, params: ViewParams, row: int) -> Tensor:
        if op == BRIGHTNESS:
            return TF.adjust_brightness(x, float(params.brightness[row]))
        if op == CONTRAST:
            return TF.adjust_contrast(x, float(params.contrast[row]))
        if op == SATURATION:
            return TF.adjust_saturation(x, float(params.saturation[row]))
        if op == HUE:
            return TF.adjust_hue(x, float(params.hue[row]))
        raise SimCLRError(f"params.color_order entries must be in 0..3, got {params.color_order[row]}")

    def __call__(self, image: Tensor, key: int, view: int = 0) -> Tensor:
        """Sample view ``view`` of sample ``key`` for ``image``, then render it (per image)."""
        image = check_rgb_image("image", image)
        return self.apply(image, self.sample([key], view, image.shape[-2], image.shape[-1]))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SimCLRError(message)


def _check_view(view: object) -> int:
    _require(view in (0, 1) and not isinstance(view, bool), f"view must be 0 or 1, got {view!r}")
    return int(view)  # type: ignore[arg-type]


def _sizes(name: str, values: object, count: int) -> np.ndarray:
    """Source sizes as int64 [count] (one int is shared by every row); SimCLRError otherwise."""
    array = np.asarray(values.cpu().numpy() if hasattr(values, "cpu") else values)  # type: ignore[union-attr]
    if array.dtype.kind not in "iu" or array.ndim > 1 or array.size not in (1, count) or (array < 1).any():
        raise SimCLRError(f"{name} must be one integer >= 1 or {count} of them, got {values!r:.80}")
    return np.broadcast_to(array.astype(np.int64).reshape(-1), (count,))


def _central_crops(height: np.ndarray, width: np.ndarray, ratio_lo: float, ratio_hi: float) -> np.ndarray:
    """RandomResizedCrop's fallback, for rows where no attempt fits: int64 [n, 4]."""
    in_ratio = width / height
    w = np.where(in_ratio < ratio_lo, width, np.where(in_ratio > ratio_hi, np.rint(height * ratio_hi), width))
    h = np.where(in_ratio < ratio_lo, np.rint(width / ratio_lo), height)
    # Rounding can push a side past the image (or to 0) for tiny images; keep it inside.
    h, w = np.clip(h, 1, height).astype(np.int64), np.clip(w, 1, width).astype(np.int64)
    return np.stack([(height - h) // 2, (width - w) // 2, h, w], axis=1)

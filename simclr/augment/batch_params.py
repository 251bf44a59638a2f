"""``ViewParams`` for a whole batch, drawn per sample exactly as ``ViewTransform.sample`` draws.

``sample_view_batch`` mirrors ``ViewTransform.sample`` (and ``sample_resized_crop``) line by
line, vectorised over the batch on top of ``WordStream``: for a sample with seed ``s`` it
returns bit-for-bit the ``ViewParams`` that ``ViewTransform.sample`` returns from
``make_generator(s)``. Keep the two in step; tests/test_augment_batched.py compares them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simclr.augment._torch_stream import WordStream
from simclr.augment.view import ViewParams, ViewTransform

# Most output words one view can take: crop 10 attempts x 2 rands x 2 words + 2 randints,
# flip 2, colour 2 + 3 (randperm(4)) + 4 rands x 2, grayscale 2, blur 2 + 2, solarize 2.
WORDS_PER_VIEW = 42 + 2 + 13 + 2 + 4 + 2


@dataclass(frozen=True)
class BatchViewParams:
    """``ViewParams`` of B views as numpy arrays (row i belongs to sample i).

    crop int64 [B, 4] (top, left, height, width); color_order int64 [B, 4]; brightness,
    contrast, saturation, hue, blur_sigma float64 [B]; flip, color_applied, grayscale,
    blur_applied, solarize bool [B]. Values follow ``ViewParams`` conventions (identity
    colour factors when colour is off, sigma 0.0 when blur is off).
    """

    crop: np.ndarray
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
        return int(self.crop.shape[0])

    def view(self, index: int) -> ViewParams:
        """Row ``index`` as the ``ViewParams`` the per-image pipeline uses."""
        return ViewParams(
            crop=tuple(int(v) for v in self.crop[index]),  # type: ignore[arg-type]
            flip=bool(self.flip[index]),
            color_applied=bool(self.color_applied[index]),
            color_order=tuple(int(v) for v in self.color_order[index]),
            brightness=float(self.brightness[index]),
            contrast=float(self.contrast[index]),
            saturation=float(self.saturation[index]),
            hue=float(self.hue[index]),
            grayscale=bool(self.grayscale[index]),
            blur_applied=bool(self.blur_applied[index]),
            blur_sigma=float(self.blur_sigma[index]),
            solarize=bool(self.solarize[index]),
        )

    @classmethod
    def stack(cls, params: Sequence[ViewParams]) -> BatchViewParams:
        """B per-image ``ViewParams`` -> one ``BatchViewParams`` (B >= 1)."""

        def column(name: str, dtype: type) -> np.ndarray:
            return np.array([getattr(p, name) for p in params], dtype=dtype)

        return cls(
            crop=column("crop", np.int64).reshape(len(params), 4),
            flip=column("flip", np.bool_),
            color_applied=column("color_applied", np.bool_),
            color_order=column("color_order", np.int64).reshape(len(params), 4),
            brightness=column("brightness", np.float64),
            contrast=column("contrast", np.float64),
            saturation=column("saturation", np.float64),
            hue=column("hue", np.float64),
            grayscale=column("grayscale", np.bool_),
            blur_applied=column("blur_applied", np.bool_),
            blur_sigma=column("blur_sigma", np.float64),
            solarize=column("solarize", np.bool_),
        )


def sample_view_batch(
    view: ViewTransform, height: int, width: int, stream: WordStream
) -> BatchViewParams:
    """``view.sample(height, width, generator)`` for every row of ``stream`` at once."""
    crop = _sample_crops(view, height, width, stream)
    flip = stream.rand() < view.flip_p

    color = stream.rand() < view.color_p
    order = np.where(color[:, None], stream.randperm(4, color), np.arange(4))
    jitter_lo, jitter_hi = view._jitter_range  # the per-image ranges
    factors = [np.where(color, stream.uniform(jitter_lo, jitter_hi, color), 1.0) for _ in range(3)]
    hue = np.where(color, stream.uniform(-view._hue_max, view._hue_max, color), 0.0)

    grayscale = stream.rand() < view.gray_p
    blur = stream.rand() < view.blur_p
    sigma = np.where(blur, stream.uniform(*view.blur_sigma, blur), 0.0)
    solarize = stream.rand() < view.solarize_p
    return BatchViewParams(
        crop=crop,
        flip=flip,
        color_applied=color,
        color_order=order,
        brightness=factors[0],
        contrast=factors[1],
        saturation=factors[2],
        hue=hue,
        grayscale=grayscale,
        blur_applied=blur,
        blur_sigma=sigma,
        solarize=solarize,
    )


def _sample_crops(view: ViewTransform, height: int, width: int, stream: WordStream) -> np.ndarray:
    """int64 [B, 4] (top, left, h, w): ``sample_resized_crop`` for every row."""
    (scale_lo, scale_hi), (ratio_lo, ratio_hi) = view.crop_scale, view.crop_ratio
    area = height * width
    log_lo, log_hi = math.log(ratio_lo), math.log(ratio_hi)
    crops = np.zeros((stream.size, 4), dtype=np.int64)
    searching = np.ones(stream.size, dtype=bool)
    for _ in range(10):
        if not searching.any():
            break
        target_area = area * stream.uniform(scale_lo, scale_hi, searching)
        log_aspect = stream.uniform(log_lo, log_hi, searching)
        # math.exp, not np.exp: numpy's SIMD exp may differ in the last bit, and a crop
        # side is round()ed, so only the same libm call gives the same crop every time.
        aspect = np.array([math.exp(v) for v in log_aspect.tolist()])
        w = np.rint(np.sqrt(target_area * aspect)).astype(np.int64)
        h = np.rint(np.sqrt(target_area / aspect)).astype(np.int64)
        fits = searching & (w > 0) & (w <= width) & (h > 0) & (h <= height)
        top = stream.randint(height - h + 1, fits)
        left = stream.randint(width - w + 1, fits)
        crops[fits] = np.stack([top, left, h, w], axis=1)[fits]
        searching &= ~fits
    if searching.any():
        crops[searching] = _central_crop(height, width, ratio_lo, ratio_hi)
    return crops


def _central_crop(height: int, width: int, ratio_lo: float, ratio_hi: float) -> list[int]:
    # Same fallback as sample_resized_crop, for when no attempt fits.
    in_ratio = width / height
    if in_ratio < ratio_lo:
        w, h = width, int(round(width / ratio_lo))
    elif in_ratio > ratio_hi:
        h, w = height, int(round(height * ratio_hi))
    else:
        w, h = width, height
    h, w = max(1, min(h, height)), max(1, min(w, width))
    return [(height - h) // 2, (width - w) // 2, h, w]

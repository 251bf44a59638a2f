"""Tests for ViewTransform.sample (simclr.augment._random): sampled rates and crop geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simclr.augment import ViewParams, ViewTransform, make_generator

N = 2000  # samples per rate measurement


def _samples(t: ViewTransform, h: int = 256, w: int = 256, seed: int = 0) -> list[ViewParams]:
    g = make_generator(seed)
    return [t.sample(h, w, g) for _ in range(N)]


def _assert_rate(flags: list[bool], p: float) -> None:
    rate = sum(flags) / len(flags)
    se = math.sqrt(max(p * (1 - p), 1e-12) / len(flags))
    assert abs(rate - p) <= 4 * se + 1e-12, f"rate {rate:.4f} vs expected {p}"


def _assert_uniform_mean(values: list[float], lo: float, hi: float) -> None:
    se = (hi - lo) / math.sqrt(12) / math.sqrt(len(values))
    mean = float(np.mean(values))
    assert abs(mean - (lo + hi) / 2) <= 4 * se + 1e-12, f"mean {mean:.4f} vs {(lo + hi) / 2}"


# ---------------------------------------------------------------- sampled rates


def test_rates_default_96() -> None:
    ps = _samples(ViewTransform(96))
    _assert_rate([p.flip for p in ps], 0.5)
    _assert_rate([p.color_applied for p in ps], 0.8)
    _assert_rate([p.grayscale for p in ps], 0.2)
    _assert_rate([p.blur_applied for p in ps], 0.5)  # automatic blur for size > 32
    _assert_rate([p.solarize for p in ps], 0.0)
    sigmas = [p.blur_sigma for p in ps if p.blur_applied]
    assert all(0.1 <= s <= 2.0 for s in sigmas)
    _assert_uniform_mean(sigmas, 0.1, 2.0)
    assert all(p.blur_sigma == 0.0 for p in ps if not p.blur_applied)


def test_rates_size_32_and_custom_probabilities() -> None:
    ps = _samples(ViewTransform(32, flip_p=0.1, color_p=0.3, gray_p=0.6, solarize_p=0.2))
    _assert_rate([p.blur_applied for p in ps], 0.0)  # automatic: no blur at CIFAR size
    _assert_rate([p.flip for p in ps], 0.1)
    _assert_rate([p.color_applied for p in ps], 0.3)
    _assert_rate([p.grayscale for p in ps], 0.6)
    _assert_rate([p.solarize for p in ps], 0.2)
    ps = _samples(ViewTransform(32, blur_p=0.7, flip_p=1.0, gray_p=0.0), seed=1)
    _assert_rate([p.blur_applied for p in ps], 0.7)
    assert all(p.flip for p in ps) and not any(p.grayscale for p in ps)


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0, 3.0])
def test_color_jitter_ranges(strength: float) -> None:
    ps = [p for p in _samples(ViewTransform(32, color_strength=strength)) if p.color_applied]
    lo, hi = max(0.0, 1 - 0.8 * strength), 1 + 0.8 * strength
    hue_max = min(0.2 * strength, 0.5)
    for name in ("brightness", "contrast", "saturation"):
        values = [getattr(p, name) for p in ps]
        assert all(lo <= v <= hi for v in values), name
        _assert_uniform_mean(values, lo, hi)  # mean 1 while 0.8 * strength <= 1
    hues = [p.hue for p in ps]
    assert all(-hue_max <= h <= hue_max for h in hues)
    _assert_uniform_mean(hues, -hue_max, hue_max)
    assert max(abs(h) for h in hues) > 0.9 * hue_max  # the range is actually used
    assert all(sorted(p.color_order) == [0, 1, 2, 3] for p in ps)
    first = [p.color_order[0] for p in ps]
    for op in range(4):
        _assert_rate([f == op for f in first], 0.25)


def test_color_off_records_identity() -> None:
    ps = [p for p in _samples(ViewTransform(32, color_p=0.5)) if not p.color_applied]
    assert ps and all(
        (p.brightness, p.contrast, p.saturation, p.hue) == (1.0, 1.0, 1.0, 0.0) for p in ps
    )
    assert all(p.hue == 0.0 for p in _samples(ViewTransform(32, color_strength=0.0)))


def _area_aspect(ps: list[ViewParams], side: int) -> tuple[list[float], list[float]]:
    return [p.crop[2] * p.crop[3] / side**2 for p in ps], [p.crop[3] / p.crop[2] for p in ps]


def test_crop_area_and_aspect_ranges() -> None:
    side = 1000
    areas, aspects = _area_aspect(_samples(ViewTransform(32), side, side), side)
    assert all(0.08 * 0.99 <= a <= 1.0 for a in areas)
    assert all(0.75 * 0.99 <= r <= 4 / 3 * 1.01 for r in aspects)
    logs = np.log(aspects)
    assert abs(logs.mean()) < 4 * logs.std() / math.sqrt(N)  # log-uniform: symmetric in log
    # Only draws that fit are kept, so the mean is E[a | a * max(r, 1/r) <= 1] (numeric).
    a = np.linspace(0.08, 1.0, 2001)[:, None]
    u = np.linspace(-math.log(4 / 3), math.log(4 / 3), 2001)[None, :]
    fits = a * np.exp(np.abs(u)) <= 1.0
    expected = float((a * fits).sum() / fits.sum())
    assert abs(float(np.mean(areas)) - expected) < 4 * float(np.std(areas)) / math.sqrt(N)
    assert expected < 0.53  # the rejection step measurably matters


def test_crop_area_mean_when_every_draw_fits() -> None:
    side = 1000
    square = ViewTransform(32, crop_ratio=(1.0, 1.0))
    areas, aspects = _area_aspect(_samples(square, side, side), side)
    assert all(r == 1.0 for r in aspects)
    _assert_uniform_mean(areas, 0.08, 1.0)  # analytic mean 0.54
    areas, _ = _area_aspect(_samples(ViewTransform(32, crop_scale=(0.08, 0.5)), side, side), side)
    _assert_uniform_mean(areas, 0.08, 0.5)


def test_crop_inside_image_and_position_spread() -> None:
    ps = _samples(ViewTransform(32), 50, 30)
    assert all(0 <= t and 0 <= l and h >= 1 and w >= 1 and t + h <= 50 and l + w <= 30
               for t, l, h, w in (p.crop for p in ps))  # fmt: skip
    assert len({p.crop[:2] for p in ps}) > 50


def test_crop_fallback_is_central() -> None:
    t = ViewTransform(16, crop_scale=(0.5, 1.0))  # no 3/4..4/3 crop of half a 1x100 strip fits
    assert t.sample(1, 100, make_generator(0)).crop == (0, 49, 1, 1)
    assert t.sample(100, 1, make_generator(0)).crop == (49, 0, 1, 1)
    # 200x40 is too wide for the ratio range: central 40 high, round(40*4/3)=53 wide.
    wide = ViewTransform(16, crop_scale=(0.9, 1.0))
    assert wide.sample(40, 200, make_generator(0)).crop == (0, 73, 40, 53)

"""ViewTransform.sample / sample_crops: rates and ranges of every op, and crop geometry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simclr.augment import ViewTransform, sample_keys
from simclr.errors import SimCLRError

N = 20_000  # samples per measurement: sampling is vectorised, so this costs milliseconds
KEYS = sample_keys(0, 0, np.arange(N))
FIELDS = ("crop", "flip", "color_applied", "color_order", "brightness", "contrast", "saturation",
          "hue", "grayscale", "blur_applied", "blur_sigma", "solarize")  # fmt: skip


def _assert_rate(flags: np.ndarray, p: float) -> None:
    rate = float(np.mean(flags))
    se = math.sqrt(max(p * (1 - p), 1e-12) / flags.size)
    assert abs(rate - p) <= 4 * se + 1e-12, f"rate {rate:.4f} vs expected {p}"


def _assert_uniform(values: np.ndarray, lo: float, hi: float, slack: float = 0.0) -> None:
    """In [lo, hi] (up to ``slack``), mean (lo + hi) / 2 and a uniform CDF (Kolmogorov-Smirnov)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    n = values.size
    assert n > 100
    assert lo - slack <= values[0] and values[-1] <= hi + slack, (values[0], values[-1])
    se = (hi - lo) / math.sqrt(12 * n)
    assert abs(values.mean() - (lo + hi) / 2) <= 4 * se + slack, f"mean {values.mean():.4f}"
    cdf = np.clip((values - lo) / (hi - lo), 0, 1)
    ks = max(np.abs(cdf - np.arange(1, n + 1) / n).max(), np.abs(cdf - np.arange(n) / n).max())
    assert ks < 1.95 / math.sqrt(n) + slack / (hi - lo), f"KS distance {ks:.4f}"  # 0.1% level


# ---------------------------------------------------------------- rates


@pytest.mark.parametrize("view", [0, 1])
def test_rates_default_96(view: int) -> None:
    p = ViewTransform(96).sample(KEYS, view, 256, 256)
    assert len(p) == N and all(getattr(p, name).shape[0] == N for name in FIELDS)
    _assert_rate(p.flip, 0.5)
    _assert_rate(p.color_applied, 0.8)
    _assert_rate(p.grayscale, 0.2)
    _assert_rate(p.blur_applied, 0.5)  # automatic blur for size > 32
    assert not p.solarize.any()
    _assert_uniform(p.blur_sigma[p.blur_applied], 0.1, 2.0)
    assert (p.blur_sigma[~p.blur_applied] == 0.0).all()


def test_rates_size_32_and_custom_probabilities() -> None:
    p = ViewTransform(32, flip_p=0.1, color_p=0.3, gray_p=0.6, solarize_p=0.2).sample(KEYS, 1)
    assert not p.blur_applied.any() and (p.blur_sigma == 0).all()  # automatic: no blur at 32
    _assert_rate(p.flip, 0.1)
    _assert_rate(p.color_applied, 0.3)
    _assert_rate(p.grayscale, 0.6)
    _assert_rate(p.solarize, 0.2)
    p = ViewTransform(32, blur_p=0.7, flip_p=1.0, gray_p=0.0, color_p=1.0, solarize_p=1.0,
                      blur_sigma=(0.5, 3.0)).sample(KEYS)  # fmt: skip
    _assert_rate(p.blur_applied, 0.7)
    _assert_uniform(p.blur_sigma[p.blur_applied], 0.5, 3.0)
    assert p.flip.all() and p.color_applied.all() and p.solarize.all() and not p.grayscale.any()
    p = ViewTransform(32, flip_p=0.0, color_p=0.0, gray_p=1.0).sample(KEYS)
    assert not p.flip.any() and not p.color_applied.any() and p.grayscale.all()


def test_flags_are_independent_of_each_other() -> None:
    p = ViewTransform(64, solarize_p=0.5).sample(KEYS)
    flags = np.stack([p.flip, p.color_applied, p.grayscale, p.blur_applied, p.solarize]).astype(float)
    corr = np.corrcoef(flags)[np.triu_indices(5, 1)]
    assert np.abs(corr).max() < 4 / math.sqrt(N)


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0, 3.0])
def test_color_jitter_ranges(strength: float) -> None:
    p = ViewTransform(32, color_strength=strength).sample(KEYS)
    on = p.color_applied
    lo, hi = max(0.0, 1 - 0.8 * strength), 1 + 0.8 * strength  # ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)
    hue_max = min(0.2 * strength, 0.5)
    for name in ("brightness", "contrast", "saturation"):
        values = getattr(p, name)[on]
        _assert_uniform(values, lo, hi)  # mean 1 while 0.8 * strength <= 1
        assert values.max() > hi - 0.01 * (hi - lo) and values.min() < lo + 0.01 * (hi - lo)
    hues = p.hue[on]
    _assert_uniform(hues, -hue_max, hue_max)
    assert np.abs(hues).max() > 0.99 * hue_max  # the range is actually used
    # The four factors are independent draws.
    corr = np.corrcoef(np.stack([p.brightness[on], p.contrast[on], p.saturation[on], p.hue[on]]))
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 4 / math.sqrt(on.sum())


def test_color_orders_uniform_over_all_24() -> None:
    p = ViewTransform(32, color_p=0.9).sample(KEYS)
    orders = p.color_order[p.color_applied]
    assert p.color_order.dtype == np.int64
    assert (np.sort(orders, axis=1) == np.arange(4)).all()  # every row a permutation
    perms = list(itertools.permutations(range(4)))
    counts = np.array([(orders == perm).all(axis=1).sum() for perm in perms])
    assert counts.sum() == len(orders)
    expected = len(orders) / 24
    assert np.abs(counts - expected).max() < 4 * math.sqrt(expected * 23 / 24)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 49.73  # 99.9% quantile of chi-square with 23 degrees of freedom
    for position in range(4):
        for op in range(4):
            _assert_rate(orders[:, position] == op, 0.25)


def test_color_off_records_identity() -> None:
    p = ViewTransform(32, color_p=0.5).sample(KEYS)
    off = ~p.color_applied
    assert off.sum() > 0.4 * N
    assert (p.brightness[off] == 1.0).all() and (p.contrast[off] == 1.0).all()
    assert (p.saturation[off] == 1.0).all() and (p.hue[off] == 0.0).all()
    assert (p.color_order[off] == np.arange(4)).all()
    zero = ViewTransform(32, color_strength=0.0).sample(KEYS)
    for name in ("brightness", "contrast", "saturation"):
        assert (getattr(zero, name) == 1.0).all()
    assert (zero.hue == 0.0).all()


# ---------------------------------------------------------------- crops


def _area_log_aspect(crop: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return crop[:, 2] * crop[:, 3] / (h * w), np.log(crop[:, 3] / crop[:, 2])


def _assert_inside(crop: np.ndarray, h: object, w: object) -> None:
    top, left, ch, cw = crop.T
    assert crop.dtype == np.int64 and crop.shape == (len(top), 4)
    assert (top >= 0).all() and (left >= 0).all() and (ch >= 1).all() and (cw >= 1).all()
    assert (top + ch <= h).all() and (left + cw <= w).all()


def test_crop_area_and_aspect_ranges() -> None:
    side = 1000
    crop = ViewTransform(32).sample_crops(KEYS, 0, side, side)
    _assert_inside(crop, side, side)
    areas, log_aspect = _area_log_aspect(crop, side, side)
    assert 0.08 * 0.99 <= areas.min() and areas.max() <= 1.0
    assert np.abs(log_aspect).max() <= math.log(4 / 3) + 0.01
    assert abs(log_aspect.mean()) < 4 * log_aspect.std() / math.sqrt(N)  # symmetric in log
    # Only draws that fit are kept, so the mean is E[a | a * max(r, 1/r) <= 1] (numeric).
    a = np.linspace(0.08, 1.0, 2001)[:, None]
    u = np.linspace(-math.log(4 / 3), math.log(4 / 3), 2001)[None, :]
    fits = a * np.exp(np.abs(u)) <= 1.0
    expected = float((a * fits).sum() / fits.sum())
    assert abs(areas.mean() - expected) < 4 * areas.std() / math.sqrt(N)
    assert expected < 0.53  # the rejection step measurably matters


def test_crop_area_and_aspect_uniform_when_every_draw_fits() -> None:
    side = 1000
    square = ViewTransform(32, crop_ratio=(1.0, 1.0)).sample_crops(KEYS, 0, side, side)
    areas, log_aspect = _area_log_aspect(square, side, side)
    assert (log_aspect == 0).all()
    _assert_uniform(areas, 0.08, 1.0, slack=0.002)  # sides rounded to pixels
    # Areas <= 0.5 with aspects in [3/4, 4/3] always fit: both are uniform, in log for the aspect.
    crop = ViewTransform(32, crop_scale=(0.08, 0.5)).sample_crops(KEYS, 1, side, side)
    areas, log_aspect = _area_log_aspect(crop, side, side)
    _assert_uniform(areas, 0.08, 0.5, slack=0.002)
    _assert_uniform(log_aspect, math.log(3 / 4), math.log(4 / 3), slack=0.005)
    assert abs(np.corrcoef(areas, log_aspect)[0, 1]) < 4 / math.sqrt(N)


@pytest.mark.parametrize("hw", [(50, 30), (7, 300), (300, 7), (2, 2), (1, 1), (480, 640)])
def test_crops_inside_image_and_position_spread(hw: tuple[int, int]) -> None:
    h, w = hw
    crop = ViewTransform(32).sample_crops(KEYS[:5000], 0, h, w)
    _assert_inside(crop, h, w)
    if min(h, w) < 10:
        return
    assert len({(t, l) for t, l in crop[:, :2].tolist()}) > 50
    # Top and left are uniform over the free range: (pos + 0.5) / (free + 1) has mean 1/2.
    for pos, free in ((crop[:, 0], h - crop[:, 2]), (crop[:, 1], w - crop[:, 3])):
        frac = (pos + 0.5) / (free + 1)
        assert abs(frac.mean() - 0.5) < 4 * math.sqrt(1 / 12 / len(frac))


def test_crop_fallback_is_central() -> None:
    t = ViewTransform(16, crop_scale=(0.5, 1.0))  # no 3/4..4/3 crop of half a 1x100 strip fits
    assert (t.sample_crops(KEYS[:500], 0, 1, 100) == (0, 49, 1, 1)).all()
    assert (t.sample_crops(KEYS[:500], 1, 100, 1) == (49, 0, 1, 1)).all()
    # 40x200 is too wide for the ratio range: central 40 high, round(40 * 4/3) = 53 wide;
    # 200x40 too tall: 40 wide, round(40 / (3/4)) = 53 high.
    t = ViewTransform(16, crop_scale=(0.9, 1.0))
    assert (t.sample_crops(KEYS[:500], 0, 40, 200) == (0, 73, 40, 53)).all()
    assert (t.sample_crops(KEYS[:500], 0, 200, 40) == (73, 0, 53, 40)).all()
    # Within the ratio range the fallback is the whole image: at scale 1 only draws that
    # round to 10x12 or 10x11 fit a 10x12 source, so most rows fall back.
    whole = ViewTransform(16, crop_scale=(1.0, 1.0), crop_ratio=(0.5, 2.0))
    crop = whole.sample_crops(KEYS[:500], 0, 10, 12)
    assert (crop == (0, 0, 10, 12)).all(axis=1).mean() > 0.9 and (crop[:, 2] == 10).all()
    assert (t.sample_crops(KEYS[:500], 0, 1, 1) == (0, 0, 1, 1)).all()


def test_per_row_heights_and_widths() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    heights, widths = rng.integers(1, 600, n), rng.integers(1, 600, n)
    heights[:50], widths[:50] = 1, 100  # rows that fall back, among rows that do not
    t = ViewTransform(32, crop_scale=(0.3, 1.0))
    crop = t.sample_crops(KEYS[:n], 1, heights, widths)
    _assert_inside(crop, heights, widths)
    assert (crop[:50] == (0, 49, 1, 1)).all()
    for i in range(0, n, 97):
        np.testing.assert_array_equal(crop[i], t.sample_crops(KEYS[i : i + 1], 1, heights[i], widths[i])[0])
    np.testing.assert_array_equal(t.sample(KEYS[:n], 1, heights, widths).crop, crop)
    # One height for all rows, a width per row.
    crop = t.sample_crops(KEYS[:n], 0, 100, widths)
    _assert_inside(crop, 100, widths)
    areas = crop[:, 2] * crop[:, 3] / (100 * widths)
    assert areas.max() <= 1.0 and np.median(areas) > 0.3


def test_bad_source_sizes() -> None:
    t = ViewTransform(8)
    for h, w in [(0, 10), (10, 0), (10, [5, -1])]:
        with pytest.raises(SimCLRError, match="heights|widths") as info:
            t.sample_crops([1, 2], 0, h, w)
        assert "\n" not in str(info.value)
    with pytest.raises(SimCLRError, match="keys must be integers"):
        t.sample([1, -2], 0, 10, 10)

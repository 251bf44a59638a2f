"""Tests for simclr.augment: shapes, determinism, sampled rates, and what each op does."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from simclr.augment import (
    EvalTransform,
    TwoViewTransform,
    ViewParams,
    ViewTransform,
    make_generator,
    save_augmentation_grid,
    view_seed,
)
from simclr.errors import SimCLRError

N = 2000  # samples per rate measurement


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)


def _identity(h: int, w: int, **changes: object) -> ViewParams:
    """Params that only crop the full image; ``changes`` switch individual ops on."""
    base = ViewParams(
        crop=(0, 0, h, w), flip=False, color_applied=False, color_order=(0, 1, 2, 3),
        brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, grayscale=False,
        blur_applied=False, blur_sigma=0.0, solarize=False,
    )  # fmt: skip
    return replace(base, **changes)


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


# ---------------------------------------------------------------- shapes and determinism


@pytest.mark.parametrize("hw", [(96, 96), (20, 20), (5, 7), (1, 1), (300, 41), (33, 200)])
@pytest.mark.parametrize("size", [32, 96])
def test_output_shape_dtype_range(hw: tuple[int, int], size: int) -> None:
    t = ViewTransform(size, solarize_p=0.5)
    g = make_generator(1)
    for _ in range(3):
        out = t(_image(*hw), g)
        assert out.shape == (3, size, size) and out.dtype == torch.float32
        assert out.is_contiguous() and 0.0 <= out.min() and out.max() <= 1.0


def test_same_seed_identical_different_seed_differs() -> None:
    tv = TwoViewTransform(ViewTransform(64))
    img = _image(80, 100)
    a1, b1 = tv(img, 123)
    a2, b2 = tv(img, 123)
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    a3, _ = tv(img, 124)
    assert not torch.equal(a1, a3)
    assert not torch.equal(a1, b1)  # the two views of one call are different draws


def test_global_rng_neither_used_nor_advanced() -> None:
    t, img = ViewTransform(48, blur_p=1.0), _image(60, 70)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    out1 = t(img, make_generator(7))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    assert torch.equal(out1, t(img, make_generator(7)))


def test_two_views_are_consecutive_draws_of_one_generator() -> None:
    va, vb = ViewTransform(32), ViewTransform(32, gray_p=1.0)
    img = _image(40, 40)
    a, b = TwoViewTransform(va, vb)(img, 5)
    g = make_generator(5)
    assert torch.equal(a, va(img, g)) and torch.equal(b, vb(img, g))
    assert torch.equal(b[0], b[1]) and torch.equal(b[1], b[2])  # view_b always gray


def test_view_seed_stable_and_distinct() -> None:
    # Golden values: SeedSequence output is stable across numpy versions by design.
    assert view_seed(0, 0, 0) == 6569863346532939966
    assert view_seed(1234, 5, 678) == 7986043447753572249
    assert view_seed(3, 4, 5) == view_seed(3, 4, 5)
    base = view_seed(3, 4, 5)
    others = {view_seed(4, 4, 5), view_seed(3, 5, 5), view_seed(3, 4, 6), view_seed(5, 4, 3)}
    assert base not in others and len(others) == 4
    seeds = {view_seed(0, e, i) for e in range(20) for i in range(50)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert view_seed(np.int64(3), 4, np.uint32(5)) == base


def test_make_generator_is_cpu_and_seeded() -> None:
    g = make_generator(2**63 - 1)
    assert g.device.type == "cpu" and g.initial_seed() == 2**63 - 1
    draws = [torch.rand(4, generator=make_generator(9)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])


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


# ---------------------------------------------------------------- what each op does


def test_identity_params_equal_plain_resize() -> None:
    img = _image(50, 70)
    out = ViewTransform(32).apply(img, _identity(50, 70))
    expected = F.interpolate(img[None].float() / 255, size=(32, 32), mode="bilinear",
                             align_corners=False, antialias=True)[0]  # fmt: skip
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_crop_selects_region() -> None:
    img = _image(40, 50)
    out = ViewTransform(16).apply(img, _identity(40, 50, crop=(3, 5, 16, 16)))
    torch.testing.assert_close(out, img[:, 3:19, 5:21].float() / 255, atol=1e-7, rtol=0)


def test_flip_and_grayscale() -> None:
    t, img = ViewTransform(24), _image(30, 40)
    plain = t.apply(img, _identity(30, 40))
    assert torch.equal(t.apply(img, _identity(30, 40, flip=True)), torch.flip(plain, dims=[-1]))
    gray = t.apply(img, _identity(30, 40, grayscale=True))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    luma = 0.299 * plain[0] + 0.587 * plain[1] + 0.114 * plain[2]
    torch.testing.assert_close(gray[0], luma, atol=2e-3, rtol=0)


def test_color_ops_match_their_formulas_and_order() -> None:
    t, img = ViewTransform(16), _image(16, 16)
    x = img.float() / 255

    def bright(y: torch.Tensor, b: float) -> torch.Tensor:
        return (y * b).clamp(0, 1)

    def contrast(y: torch.Tensor, c: float) -> torch.Tensor:
        mean = (0.2989 * y[0] + 0.587 * y[1] + 0.114 * y[2]).mean()
        return (c * y + (1 - c) * mean).clamp(0, 1)

    on = {"color_applied": True, "brightness": 1.7, "contrast": 0.4}
    bc = t.apply(img, _identity(16, 16, color_order=(0, 1, 2, 3), **on))
    cb = t.apply(img, _identity(16, 16, color_order=(1, 3, 2, 0), **on))
    torch.testing.assert_close(bc, contrast(bright(x, 1.7), 0.4), atol=1e-5, rtol=0)
    torch.testing.assert_close(cb, bright(contrast(x, 0.4), 1.7), atol=1e-5, rtol=0)
    assert not torch.allclose(bc, cb, atol=1e-3)
    desat = t.apply(img, _identity(16, 16, color_applied=True, saturation=0.0))
    torch.testing.assert_close(desat[0], desat[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(desat[1], desat[2], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("hue", "rgb"), [(1 / 3, (0, 1, 0)), (-1 / 3, (0, 0, 1)), (0.5, (0, 1, 1))]
)
def test_hue_rotates_red(hue: float, rgb: tuple[int, int, int]) -> None:
    red = torch.zeros(3, 8, 8, dtype=torch.uint8)
    red[0] = 255
    out = ViewTransform(8).apply(red, _identity(8, 8, color_applied=True, hue=hue))
    expected = torch.tensor(rgb, dtype=torch.float32)[:, None, None].expand(3, 8, 8)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_blur_matches_reflect_padded_gaussian() -> None:
    t, img, sigma = ViewTransform(40, blur_kernel_frac=0.2), _image(40, 40), 1.3
    assert t.blur_kernel_size == 9
    out = t.apply(img, _identity(40, 40, blur_applied=True, blur_sigma=sigma))
    xs = torch.arange(9, dtype=torch.float32) - 4
    k1 = torch.exp(-(xs**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    x = F.pad(img[None].float() / 255, (4, 4, 4, 4), mode="reflect")
    x = F.conv2d(x, k1.view(1, 1, 1, 9).repeat(3, 1, 1, 1), groups=3)
    x = F.conv2d(x, k1.view(1, 1, 9, 1).repeat(3, 1, 1, 1), groups=3)[0]
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("size", "kernel"), [(1, 1), (8, 3), (32, 3), (96, 11), (224, 23)])
def test_blur_kernel_size(size: int, kernel: int) -> None:
    assert ViewTransform(size).blur_kernel_size == kernel


def test_blur_on_tiny_output_runs() -> None:
    out = ViewTransform(1, blur_p=1.0)(_image(9, 9), make_generator(0))
    assert out.shape == (3, 1, 1)


@pytest.mark.parametrize("threshold", [128, 0, 200])
def test_solarize_inverts_at_or_above_threshold(threshold: int) -> None:
    img = torch.arange(256, dtype=torch.uint8).view(16, 16).expand(3, 16, 16).contiguous()
    t = ViewTransform(16, solarize_threshold=threshold)
    out = t.apply(img, _identity(16, 16, solarize=True))
    p = img.float()
    expected = torch.where(p >= threshold, 255 - p, p) / 255
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_apply_rejects_crop_outside_image() -> None:
    with pytest.raises(SimCLRError, match="crop"):
        ViewTransform(8).apply(_image(10, 10), _identity(10, 10, crop=(5, 0, 6, 10)))


# ---------------------------------------------------------------- eval transform


def test_eval_transform_resizes_shorter_side_and_center_crops() -> None:
    img = _image(64, 128)
    out = EvalTransform(32)(img)
    resized = F.interpolate(img[None].float() / 255, size=(32, 64), mode="bilinear",
                            align_corners=False, antialias=True)[0]  # fmt: skip
    torch.testing.assert_close(out, resized[:, :, 16:48], atol=1e-6, rtol=0)
    assert torch.equal(out, EvalTransform(32)(img))
    for hw in [(10, 7), (300, 41), (32, 32)]:
        y = EvalTransform(32)(_image(*hw))
        assert y.shape == (3, 32, 32) and y.dtype == torch.float32
        assert 0.0 <= y.min() and y.max() <= 1.0


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_scale": (0.6, 0.2)}, "crop_scale"),
        ({"crop_scale": (0.5, 1.2)}, "crop_scale"),
        ({"crop_scale": 0.5}, "crop_scale"),
        ({"crop_ratio": (2.0, 1.0)}, "crop_ratio"),
        ({"crop_ratio": (0.0, 1.0)}, "crop_ratio"),
        ({"flip_p": 1.5}, "flip_p"),
        ({"color_p": -0.1}, "color_p"),
        ({"gray_p": 2.0}, "gray_p"),
        ({"blur_p": 1.1}, "blur_p"),
        ({"solarize_p": -0.5}, "solarize_p"),
        ({"color_strength": -1.0}, "color_strength"),
        ({"color_strength": float("nan")}, "color_strength"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        ({"blur_sigma": (2.0, 1.0)}, "blur_sigma"),
        ({"blur_kernel_frac": 0.0}, "blur_kernel_frac"),
        ({"solarize_threshold": 300}, "solarize_threshold"),
    ],
)
def test_invalid_view_args(kwargs: dict[str, object], name: str) -> None:
    args = {"size": 32, **kwargs}
    with pytest.raises(SimCLRError, match=name) as info:
        ViewTransform(**args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_invalid_other_args(tmp_path) -> None:
    with pytest.raises(SimCLRError, match="run_seed"):
        view_seed(-1, 0, 0)
    with pytest.raises(SimCLRError, match="index"):
        view_seed(0, 0, -3)
    with pytest.raises(SimCLRError, match="seed"):
        make_generator(-1)
    with pytest.raises(SimCLRError, match="size"):
        EvalTransform(0)
    with pytest.raises(SimCLRError, match="view_b"):
        TwoViewTransform(ViewTransform(32), ViewTransform(64))
    with pytest.raises(SimCLRError, match="image"):
        ViewTransform(32)(torch.zeros(1, 8, 8, dtype=torch.uint8), make_generator(0))
    tv = TwoViewTransform(ViewTransform(32))
    with pytest.raises(SimCLRError, match="views_per_image"):
        save_augmentation_grid([_image(8, 8)], tv, tmp_path / "g.png", views_per_image=0)
    with pytest.raises(SimCLRError, match="images"):
        save_augmentation_grid([], tv, tmp_path / "g.png")


# ---------------------------------------------------------------- grid


def test_save_augmentation_grid_writes_png(tmp_path) -> None:
    tv = TwoViewTransform(ViewTransform(32))
    target = tmp_path / "nested" / "dir" / "grid.png"
    images = [_image(40, 60), _image(25, 25, seed=1)]
    path = save_augmentation_grid(images, tv, target, views_per_image=3)
    assert path == target and path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > im.height > 0

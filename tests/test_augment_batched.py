"""Tests for simclr.augment.batched: same parameters and (to float rounding) the same views
as the per-image TwoViewTransform, sampled rates, determinism, errors, and the benchmark."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _images import random_image

import simclr.augment.batched as batched_module
from simclr.augment import (
    BatchedTwoViewTransform,
    BatchViewParams,
    TwoViewTransform,
    ViewParams,
    ViewTransform,
    make_generator,
    render_views,
)
from simclr.augment._torch_stream import stream_matches_torch
from simclr.benchmark.augment import bench_augmentation, main
from simclr.errors import SimCLRError

# Rendering tolerance. The batched ops compute the same formulas in another order (resize
# weights summed by a matmul, hue through a branch-free HSV map), so float32 results differ
# by rounding: seen <= 5e-6. 1e-5 is ~80 float32 ulps at 1.0 and 400x below one uint8 step.
ATOL = 1e-5
BIG_SEEDS = [2**32 + 7, 2**63 - 1, 2**64 - 1]


@pytest.fixture(autouse=True)
def _one_thread():
    # Small tensors: on a shared, busy machine two OpenMP threads mostly wait for each other.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


# ---------------------------------------------------------------- parameters


def test_fast_sampler_is_used_on_this_torch() -> None:
    # If this fails, torch changed its generator and batched sampling fell back to the slow path.
    assert stream_matches_torch()


@pytest.mark.parametrize(
    ("view_a", "view_b", "hw"),
    [
        (ViewTransform(32), None, (32, 32)),
        (ViewTransform(96, solarize_p=0.3, color_strength=2.0), ViewTransform(96, gray_p=1.0),
         (100, 140)),
        (ViewTransform(16, crop_scale=(0.5, 1.0)), None, (1, 100)),  # every crop falls back
        (ViewTransform(16, crop_scale=(0.9, 1.0), color_p=0.5), None, (40, 200)),
        (ViewTransform(8, crop_ratio=(0.2, 5.0), blur_p=0.7), None, (3, 5)),
    ],
)  # fmt: skip
def test_params_identical_to_per_image(
    view_a: ViewTransform, view_b: ViewTransform | None, hw: tuple[int, int]
) -> None:
    seeds = list(range(300)) + BIG_SEEDS
    first, second = BatchedTwoViewTransform(view_a, view_b).sample(seeds, *hw)
    expected = per_image_params(view_a, view_b or view_a, seeds, *hw)
    assert len(first) == len(second) == len(seeds)
    for i, (a, b) in enumerate(expected):
        assert first.view(i) == a and second.view(i) == b, f"seed {seeds[i]}"


def test_fallback_sampler_gives_the_same_params(monkeypatch: pytest.MonkeyPatch) -> None:
    bt, seeds = BatchedTwoViewTransform(ViewTransform(64, solarize_p=0.5)), list(range(50))
    fast = bt.sample(seeds, 70, 90)
    monkeypatch.setattr(batched_module, "stream_matches_torch", lambda: False)
    with pytest.warns(RuntimeWarning, match="per image"):
        slow = bt.sample(seeds, 70, 90)
    for f, s in zip(fast, slow):
        assert all(f.view(i) == s.view(i) for i in range(len(seeds)))


def test_stack_round_trips_view_params() -> None:
    ps = per_image_params(ViewTransform(32), ViewTransform(32), list(range(20)), 40, 50)
    stacked = BatchViewParams.stack([a for a, _ in ps])
    assert [stacked.view(i) for i in range(20)] == [a for a, _ in ps]


# ---------------------------------------------------------------- rendering, op by op


def _identity(h: int, w: int, **changes: object) -> ViewParams:
    base = ViewParams(
        crop=(0, 0, h, w), flip=False, color_applied=False, color_order=(0, 1, 2, 3),
        brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, grayscale=False,
        blur_applied=False, blur_sigma=0.0, solarize=False,
    )  # fmt: skip
    return replace(base, **changes)


def _assert_rows_match(view: ViewTransform, images: torch.Tensor, ps: list[ViewParams]) -> None:
    out = render_views(view, images, BatchViewParams.stack(ps))
    assert out.shape == (len(ps), 3, view.size, view.size) and out.dtype == torch.float32
    for i, p in enumerate(ps):
        torch.testing.assert_close(out[i], view.apply(images[i], p), atol=ATOL, rtol=0)


def test_crop_resize_and_flip_match_per_image() -> None:
    h, w = 48, 60
    images = natural_images(8, h, w)
    crops = [(0, 0, h, w), (5, 7, 10, 13), (0, 0, 32, 32), (20, 30, 28, 30),
             (1, 2, 47, 5), (47, 59, 1, 1), (3, 0, 40, 60), (10, 10, 33, 17)]  # fmt: skip
    ps = [_identity(h, w, crop=c, flip=i % 2 == 1) for i, c in enumerate(crops)]
    _assert_rows_match(ViewTransform(32), images, ps)  # shrinking, enlarging, scale 1, 1 px
    _assert_rows_match(ViewTransform(7), images, ps)
    # Against an independent reference too: interpolate on the cropped region.
    out = render_views(ViewTransform(24), images, BatchViewParams.stack(ps))
    t, l, ch, cw = crops[1]
    crop = images[1:2, :, t : t + ch, l : l + cw].float() / 255
    ref = F.interpolate(crop, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(out[1], ref[0].flip(-1), atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "changes",
    [
        {"brightness": 1.7}, {"brightness": 0.2},
        {"contrast": 1.8}, {"contrast": 0.3},
        {"saturation": 1.8}, {"saturation": 0.2},
        {"hue": 0.5}, {"hue": -0.5}, {"hue": 0.13}, {"hue": -0.31},
        {"brightness": 1.5, "contrast": 0.4, "saturation": 1.6, "hue": 0.2},
    ],
)  # fmt: skip
def test_color_ops_match_per_image_in_every_order(changes: dict[str, float]) -> None:
    h = w = 24
    images = natural_images(24, h, w, seed=1)
    images[0, :, :4] = torch.tensor([255, 0, 0], dtype=torch.uint8)[:, None, None]  # pure red
    images[1] = 128  # grey: hue has no effect
    orders = list(itertools.permutations(range(4)))  # all 24, one image each
    ps = [_identity(h, w, color_applied=True, color_order=o, **changes) for o in orders]
    _assert_rows_match(ViewTransform(h), images, ps)


def test_grayscale_blur_solarize_match_per_image() -> None:
    h = w = 40
    images = natural_images(6, h, w, seed=2)
    images[5] = torch.arange(256, dtype=torch.uint8).repeat(7)[: h * w].view(h, w)  # all levels
    view = ViewTransform(40, blur_kernel_frac=0.2, solarize_threshold=200)
    ps = [
        _identity(h, w, grayscale=True),
        _identity(h, w, blur_applied=True, blur_sigma=0.1),
        _identity(h, w, blur_applied=True, blur_sigma=2.0),
        _identity(h, w, blur_applied=True, blur_sigma=1.3, grayscale=True),
        _identity(h, w, solarize=True),
        _identity(h, w, solarize=True),  # pixels exactly on the threshold: must agree too
    ]
    _assert_rows_match(view, images, ps)
    _assert_rows_match(ViewTransform(3, blur_p=1.0), images, [replace(p, crop=(0, 0, 3, 3))
                                                             for p in ps])  # fmt: skip


def test_views_match_per_image_pipeline() -> None:
    for size, hw, kwargs in [(32, (32, 32), {}), (64, (72, 90), {"solarize_p": 0.5})]:
        view = ViewTransform(size, **kwargs)
        images, seeds = natural_images(40, *hw, seed=size), [7 * i + 3 for i in range(40)]
        a, b = BatchedTwoViewTransform(view)(images, seeds)
        per_image = TwoViewTransform(view)
        threshold = view.solarize_threshold / 255
        for i, seed in enumerate(seeds):
            for ours, theirs in zip((a[i], b[i]), per_image(images[i], seed)):
                bad = (ours - theirs).abs() > ATOL
                # The one allowed gap: a pixel within rounding of the solarize threshold may
                # land on either side, giving t or 1 - t.
                for v in (ours[bad], theirs[bad]):
                    near = torch.minimum((v - threshold).abs(), (v - (1 - threshold)).abs())
                    assert bool((near < ATOL).all()), f"seed {seed}: {int(bad.sum())} pixels"
                assert int(bad.sum()) <= 2


# ---------------------------------------------------------------- sampled rates


N = 3000


def _rate_ok(flags: np.ndarray, p: float) -> bool:
    se = math.sqrt(max(p * (1 - p), 1e-12) / flags.size)
    return abs(float(flags.mean()) - p) <= 4 * se + 1e-12


def test_rates_match_configuration() -> None:
    view = ViewTransform(96, flip_p=0.3, color_p=0.6, gray_p=0.25, blur_p=0.4, solarize_p=0.1)
    first, second = BatchedTwoViewTransform(view).sample(range(N), 500, 500)
    for p in (first, second):
        assert _rate_ok(p.flip, 0.3) and _rate_ok(p.color_applied, 0.6)
        assert _rate_ok(p.grayscale, 0.25) and _rate_ok(p.blur_applied, 0.4)
        assert _rate_ok(p.solarize, 0.1)
        sigma = p.blur_sigma[p.blur_applied]
        assert 0.1 <= sigma.min() and sigma.max() <= 2.0
        assert abs(sigma.mean() - 1.05) < 4 * (1.9 / math.sqrt(12)) / math.sqrt(sigma.size)
        for position in range(4):
            first_op = p.color_order[p.color_applied, position]
            assert all(_rate_ok(first_op == op, 0.25) for op in range(4))
        # Crop area: numeric E[a | the draw fits] as in test_augment_random; log aspect symmetric.
        area = p.crop[:, 2] * p.crop[:, 3] / 500**2
        a = np.linspace(0.08, 1.0, 2001)[:, None]
        u = np.linspace(-math.log(4 / 3), math.log(4 / 3), 2001)[None, :]
        fits = a * np.exp(np.abs(u)) <= 1.0
        expected = float((a * fits).sum() / fits.sum())
        assert abs(area.mean() - expected) < 4 * area.std() / math.sqrt(N)
        log_aspect = np.log(p.crop[:, 3] / p.crop[:, 2])
        assert abs(log_aspect.mean()) < 4 * log_aspect.std() / math.sqrt(N)
    # The two views are independent draws.
    assert abs(np.corrcoef(first.flip, second.flip)[0, 1]) < 4 / math.sqrt(N)


def test_rates_agree_with_per_image_on_disjoint_seeds() -> None:
    # A two-sample check that needs no knowledge of how either sampler works.
    view, n = ViewTransform(64), 1500
    batched, _ = BatchedTwoViewTransform(view).sample(range(n, 2 * n), 64, 64)
    single = BatchViewParams.stack([a for a, _ in per_image_params(view, view, list(range(n)),
                                                                     64, 64)])  # fmt: skip
    for name in ("flip", "color_applied", "grayscale", "blur_applied"):
        x, y = getattr(batched, name).mean(), getattr(single, name).mean()
        pooled = (x + y) / 2
        assert abs(x - y) <= 4 * math.sqrt(2 * pooled * (1 - pooled) / n) + 1e-12, name
    for name in ("brightness", "hue"):
        x, y = getattr(batched, name), getattr(single, name)
        assert abs(x.mean() - y.mean()) <= 4 * math.sqrt((x.var() + y.var()) / n), name


def test_grayscale_rate_in_rendered_views() -> None:
    view = ViewTransform(8, gray_p=0.3, color_p=0.0)
    images = natural_images(1, 16, 16).expand(1200, -1, -1, -1)
    a, b = BatchedTwoViewTransform(view)(images, range(1200))
    for out in (a, b):
        gray = ((out[:, 0] == out[:, 1]) & (out[:, 1] == out[:, 2])).flatten(1).all(1)
        assert _rate_ok(gray.numpy(), 0.3)


# ---------------------------------------------------------------- determinism


def test_same_seeds_same_views_whatever_the_batch() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(48, blur_p=0.5, solarize_p=0.3))
    images, seeds = natural_images(16, 50, 50, seed=3), [11 * i for i in range(16)]
    a, b = bt(images, seeds)
    a2, b2 = bt(images, seeds)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    pa, pb = bt(images[order], [seeds[i] for i in order])
    torch.testing.assert_close(pa, a[order], atol=1e-6, rtol=0)
    torch.testing.assert_close(pb, b[order], atol=1e-6, rtol=0)
    sa, sb = bt(images[3:5], seeds[3:5])
    torch.testing.assert_close(sa, a[3:5], atol=1e-6, rtol=0)
    torch.testing.assert_close(sb, b[3:5], atol=1e-6, rtol=0)
    assert not torch.equal(a, b)
    assert not torch.equal(bt(images, [s + 1 for s in seeds])[0], a)


def test_global_rng_not_used() -> None:
    bt, images = BatchedTwoViewTransform(ViewTransform(16)), natural_images(4, 20, 20)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    out = bt(images, [1, 2, 3, 4])
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(5)
    assert torch.equal(bt(images, [1, 2, 3, 4])[0], out[0])


# ---------------------------------------------------------------- shapes, devices, inputs


def test_shapes_dtype_range_and_inputs() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(20, solarize_p=0.5, blur_p=0.5))
    images = natural_images(5, 9, 31)
    channels_last = images.contiguous(memory_format=torch.channels_last)
    for batch in (images, list(images), images.float() / 255, channels_last):
        a, b = bt(batch, np.arange(5, dtype=np.uint64))
        for out in (a, b):
            assert out.shape == (5, 3, 20, 20) and out.dtype == torch.float32
            assert out.is_contiguous() and out.device == images.device
            assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    torch.testing.assert_close(bt(images.float() / 255, range(5))[0], bt(images, range(5))[0],
                               atol=ATOL, rtol=0)  # fmt: skip
    one = bt(random_image(1, 1)[None], [0])[0]
    assert one.shape == (1, 3, 20, 20)
    assert repr(bt).startswith("BatchedTwoViewTransform(ViewTransform(size=20")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(64, solarize_p=0.2))
    images, seeds = natural_images(32, 72, 72), list(range(32))
    cpu = bt(images, seeds)
    gpu = bt(images.cuda(), seeds)
    for c, g in zip(cpu, gpu):
        assert g.device.type == "cuda"
        bad = (g.cpu() - c).abs() > 1e-4  # TF32 off by default; rounding differs by device
        assert float(bad.float().mean()) < 1e-4


@pytest.mark.parametrize(
    ("images", "seeds", "match"),
    [
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [0, 1], "images"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), [0], "images"),
        (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), [], "images"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.int32), [0, 1], "uint8"),
        ([torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3, 9, 8, dtype=torch.uint8)],
         [0, 1], "one shape"),
        ("not images", [0], "images"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0], "one seed per image"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, -1], "seeds"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, 2**64], "seeds"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, 1.5], "seeds"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [True, 1], "seeds"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 7, "seeds"),
    ],
)  # fmt: skip
def test_bad_input_raises_one_line(images: object, seeds: object, match: str) -> None:
    with pytest.raises(SimCLRError, match=match) as info:
        BatchedTwoViewTransform(ViewTransform(8))(images, seeds)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_bad_construction_and_params() -> None:
    with pytest.raises(SimCLRError, match="view_a"):
        BatchedTwoViewTransform("v")  # type: ignore[arg-type]
    with pytest.raises(SimCLRError, match="view_b"):
        BatchedTwoViewTransform(ViewTransform(8), ViewTransform(16))
    params, _ = BatchedTwoViewTransform(ViewTransform(8)).sample([1, 2], 8, 8)
    with pytest.raises(SimCLRError, match="params"):
        render_views(ViewTransform(8), torch.zeros(3, 3, 8, 8, dtype=torch.uint8), params)


# ---------------------------------------------------------------- benchmark


def test_bench_augmentation_reports_rates_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    row = bench_augmentation(16, 8, "cpu", 1, 0.3)
    rates = [row[f"{k}_images_per_s"] for k in ("batched", "torchvision", "per_image")]
    assert all(isinstance(r, float) and r > 0 for r in rates)
    assert row["ratio"] == pytest.approx(rates[0] / rates[1], rel=0.02)
    assert row["source_size"] == 16 and row["threads"] == 1
    assert main(["--image-size", "8", "--batch-size", "4", "--seconds", "0.2", "--device", "cpu",
                 "--threads", "1"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image_size"] == 8
    with pytest.raises(SimCLRError, match="batch_size"):
        bench_augmentation(16, 0, "cpu", 1, 0.3)
    with pytest.raises(SimCLRError, match="device"):
        bench_augmentation(16, 4, "nonsense", 1, 0.3)

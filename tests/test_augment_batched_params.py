"""simclr.augment.batched draws, for every seed, exactly the parameters the per-image
TwoViewTransform draws, and those parameters occur at the configured rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _images import (
    natural_images,
    per_image_params,
)

import simclr.augment.batched as batched_module
from simclr.augment import (
    BatchedTwoViewTransform,
    BatchViewParams,
    ViewTransform,
)
from simclr.augment._torch_stream import stream_matches_torch

BIG_SEEDS = [2**32 + 7, 2**63 - 1, 2**64 - 1]
pytestmark = pytest.mark.usefixtures("one_thread")


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



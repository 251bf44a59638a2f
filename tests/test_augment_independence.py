"""ViewTransform.sample: each row's draws depend only on its key and view, never on the rest of
the batch or on the other ops' settings; ViewParams shapes; bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _images import assert_params_equal

from simclr.augment import ViewParams, ViewTransform, sample_keys
from simclr.errors import SimCLRError

N = 20_000  # samples per measurement: sampling is vectorised, so this costs milliseconds
KEYS = sample_keys(0, 0, np.arange(N))
COLOR_FIELDS = ("color_applied", "color_order", "brightness", "contrast", "saturation", "hue")






# ---------------------------------------------------------------- independence


def test_rows_independent_of_batch_composition() -> None:
    t = ViewTransform(64, solarize_p=0.4, blur_p=0.5)
    keys = KEYS[:500]
    full = t.sample(keys, 1, 70, 90)
    order = np.random.default_rng(0).permutation(500)
    assert_params_equal(t.sample(keys[order], 1, 70, 90), full.take(order))
    assert_params_equal(t.sample(keys[100:140], 1, 70, 90), full.take(list(range(100, 140))))
    one = t.sample([int(keys[7])], 1, 70, 90)
    assert_params_equal(one, full.take([7]))
    assert_params_equal(t.sample(keys.tolist(), 1, 70, 90), full)  # keys as Python ints
    # Views 0 and 1 of a key are different, independent draws.
    other = t.sample(keys, 0, 70, 90)
    assert (other.crop != full.crop).any(axis=1).mean() > 0.95
    view0 = t.sample(KEYS, 0, 70, 90)
    view1 = t.sample(KEYS, 1, 70, 90)
    for a, b in [(view0.flip, view1.flip), (view0.brightness, view1.brightness),
                 (view0.crop[:, 2], view1.crop[:, 2])]:  # fmt: skip
        assert abs(np.corrcoef(a.astype(float), b.astype(float))[0, 1]) < 4 / math.sqrt(N)


def test_take_and_len() -> None:
    p = ViewTransform(32).sample(KEYS[:10], 0, 40, 40)
    sub = p.take(np.array([3, 3, 0]))
    assert len(sub) == 3 and isinstance(sub, ViewParams)
    np.testing.assert_array_equal(sub.crop, p.crop[[3, 3, 0]])
    np.testing.assert_array_equal(sub.color_order, p.color_order[[3, 3, 0]])
    q = ViewTransform(32).sample(KEYS[:10])
    assert q.crop is None and q.take([1]).crop is None and len(q.take([])) == 0


def test_dtypes_and_shapes() -> None:
    p = ViewTransform(96, solarize_p=0.5).sample(KEYS[:64], 0, 100, 120)
    assert p.crop.dtype == p.color_order.dtype == np.int64
    assert p.crop.shape == (64, 4) and p.color_order.shape == (64, 4)
    for name in ("flip", "color_applied", "grayscale", "blur_applied", "solarize"):
        assert getattr(p, name).dtype == np.bool_ and getattr(p, name).shape == (64,)
    for name in ("brightness", "contrast", "saturation", "hue", "blur_sigma"):
        assert getattr(p, name).dtype == np.float64 and getattr(p, name).shape == (64,)
    empty = ViewTransform(32).sample([], 0, 10, 10)
    assert len(empty) == 0 and empty.crop.shape == (0, 4)


BASE = {"size": 64, "flip_p": 0.5, "color_p": 0.8, "gray_p": 0.2, "blur_p": 0.5, "solarize_p": 0.3}


@pytest.mark.parametrize(
    ("changes", "affected"),
    [
        ({"gray_p": 0.0}, ("grayscale",)),
        ({"gray_p": 1.0}, ("grayscale",)),
        ({"flip_p": 0.0}, ("flip",)),
        ({"color_p": 0.0}, COLOR_FIELDS),
        ({"color_strength": 2.0}, ("brightness", "contrast", "saturation", "hue")),
        ({"blur_p": 0.0}, ("blur_applied", "blur_sigma")),
        ({"blur_sigma": (1.0, 3.0)}, ("blur_sigma",)),
        ({"solarize_p": 0.0}, ("solarize",)),
        ({"crop_scale": (0.5, 1.0), "crop_ratio": (0.5, 2.0)}, ("crop",)),
        ({"size": 224, "blur_kernel_frac": 0.3, "solarize_threshold": 10}, ()),
    ],
)  # fmt: skip
def test_switching_an_op_off_keeps_the_other_draws(changes: dict, affected: tuple[str, ...]) -> None:
    base = ViewTransform(**BASE)
    other = ViewTransform(**{**BASE, **changes})
    for view in (0, 1):
        a, b = base.sample(KEYS[:3000], view, 80, 120), other.sample(KEYS[:3000], view, 80, 120)
        assert_params_equal(a, b, skip=affected)
        for name in affected:  # and the changed settings did change those fields
            assert not np.array_equal(getattr(a, name), getattr(b, name)), name


def test_crop_free_sampling_draws_the_same_photometric_params() -> None:
    # What the loader relies on: the workers crop, the batch gets the rest from the same keys.
    t = ViewTransform(64, solarize_p=0.3)
    for view in (0, 1):
        full, rest = t.sample(KEYS[:3000], view, 90, 70), t.sample(KEYS[:3000], view)
        assert rest.crop is None
        assert_params_equal(full, rest, skip=("crop",))
        np.testing.assert_array_equal(t.sample_crops(KEYS[:3000], view, 90, 70), full.crop)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sample([1, 2], -1),
        lambda t: t.sample([1, 2], 1.5),
        lambda t: t.sample([1, 2], 0, 10, None),
        lambda t: t.sample_crops([1, 2], 0, [10, 20, 30], 10),
        lambda t: t.sample_crops([1, 2], 0, 10.7, 10),
    ],
)  # fmt: skip
def test_bad_view_or_sizes_raise_simclr_error(call) -> None:
    try:
        call(ViewTransform(8))
    except SimCLRError:
        return
    raise AssertionError("no SimCLRError")

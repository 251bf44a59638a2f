"""Tests for simclr.augment's two-view transform, eval transform and augmentation grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _images import random_image as _image
from PIL import Image

from simclr.augment import (
    EvalTransform,
    TwoViewTransform,
    ViewTransform,
    sample_key,
)
from simclr.errors import SimCLRError
from simclr.report.grid import save_augmentation_grid

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- two views of a key


def test_same_key_identical_different_key_differs() -> None:
    tv = TwoViewTransform(ViewTransform(64))
    img = _image(80, 100)
    key = sample_key(0, 0, 123)
    a1, b1 = tv(img, key)
    a2, b2 = tv(img, key)
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    a3, _ = tv(img, sample_key(0, 0, 124))
    assert not torch.equal(a1, a3)
    assert not torch.equal(a1, b1)  # the two views of one call are different draws
    a4, b4 = tv(img, np.uint64(key))  # numpy keys are the same key
    assert torch.equal(a1, a4) and torch.equal(b1, b4)


def test_global_rng_neither_used_nor_advanced() -> None:
    tv, img = TwoViewTransform(ViewTransform(48, blur_p=1.0)), _image(60, 70)
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    out1 = tv(img, 7)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    torch.manual_seed(999)
    np.random.seed(999)
    out2 = tv(img, 7)
    assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])


def test_two_views_are_views_0_and_1_of_the_key() -> None:
    va, vb = ViewTransform(32), ViewTransform(32, gray_p=1.0)
    img = _image(40, 40)
    key = sample_key(5, 1, 2)
    a, b = TwoViewTransform(va, vb)(img, key)
    assert torch.equal(a, va(img, key, 0)) and torch.equal(b, vb(img, key, 1))
    assert torch.equal(b[0], b[1]) and torch.equal(b[1], b[2])  # view_b always gray
    assert repr(TwoViewTransform(va)) == f"TwoViewTransform({va!r})"
    assert "view_b=" in repr(TwoViewTransform(va, vb)) and TwoViewTransform(va, vb).size == 32


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


def test_invalid_other_args(tmp_path) -> None:
    with pytest.raises(SimCLRError, match="size"):
        EvalTransform(0)
    with pytest.raises(SimCLRError, match="view_b"):
        TwoViewTransform(ViewTransform(32), ViewTransform(64))
    with pytest.raises(SimCLRError, match="image"):
        TwoViewTransform(ViewTransform(32))(torch.zeros(1, 8, 8, dtype=torch.uint8), 0)
    with pytest.raises(SimCLRError, match="view_a"):
        TwoViewTransform("view")  # type: ignore[arg-type]
    tv = TwoViewTransform(ViewTransform(32))
    for bad in (-1, 2**64, 1.5, True, [1, 2], None):
        with pytest.raises(SimCLRError, match="keys must be integers") as info:
            tv(_image(8, 8), bad)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
    with pytest.raises(SimCLRError, match="transform"):
        save_augmentation_grid([_image(8, 8)], ViewTransform(32), tmp_path / "g.png")  # type: ignore[arg-type]
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
    # Reproducible from its seed, and a different seed gives other views.
    again = save_augmentation_grid(images, tv, tmp_path / "again.png", views_per_image=3)
    other = save_augmentation_grid(images, tv, tmp_path / "other.png", seed=1, views_per_image=3)
    with Image.open(path) as x, Image.open(again) as y, Image.open(other) as z:
        assert np.array_equal(np.asarray(x), np.asarray(y)) and not np.array_equal(np.asarray(x), np.asarray(z))

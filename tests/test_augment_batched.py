"""simclr.augment.batched renders, to float rounding, the views the per-image pipeline renders
for the same keys (and from the same parameters): op by op and the whole pipeline."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from _images import ATOL, identity_params, keys_for, natural_images, stack_params

from simclr.augment import (
    BatchedTwoViewTransform,
    TwoViewTransform,
    ViewParams,
    ViewTransform,
    render_views,
)

pytestmark = pytest.mark.usefixtures("one_thread")



def _assert_close_up_to_solarize(ours: torch.Tensor, theirs: torch.Tensor, threshold: float) -> None:
    """Equal within ATOL, except that a pixel within rounding of the solarize threshold may land
    on either side (t or 1 - t): at most 2 such pixels per view."""
    bad = (ours - theirs).abs() > ATOL
    for v in (ours[bad], theirs[bad]):
        near = torch.minimum((v - threshold).abs(), (v - (1 - threshold)).abs())
        assert bool((near < ATOL).all()), f"{int(bad.sum())} pixels differ"
    assert int(bad.sum()) <= 2


# ---------------------------------------------------------------- rendering, op by op


def _assert_rows_match(view: ViewTransform, images: torch.Tensor, ps: list[ViewParams]) -> None:
    stacked = stack_params(ps)
    out = render_views(view, images, stacked)
    assert out.shape == (len(ps), 3, view.size, view.size) and out.dtype == torch.float32
    for i, p in enumerate(ps):
        expected = view.apply(images[i], p)
        assert torch.equal(expected, view.apply(images[i], stacked, i))
        torch.testing.assert_close(out[i], expected, atol=ATOL, rtol=0)


def test_crop_resize_and_flip_match_per_image() -> None:
    h, w = 48, 60
    images = natural_images(8, h, w)
    crops = [(0, 0, h, w), (5, 7, 10, 13), (0, 0, 32, 32), (20, 30, 28, 30),
             (1, 2, 47, 5), (47, 59, 1, 1), (3, 0, 40, 60), (10, 10, 33, 17)]  # fmt: skip
    ps = [identity_params(h, w, crop=c, flip=i % 2 == 1) for i, c in enumerate(crops)]
    _assert_rows_match(ViewTransform(32), images, ps)  # shrinking, enlarging, scale 1, 1 px
    _assert_rows_match(ViewTransform(7), images, ps)
    # Against an independent reference too: interpolate on the cropped region.
    out = render_views(ViewTransform(24), images, stack_params(ps))
    for i in (1, 2, 4):
        t, l, ch, cw = crops[i]
        crop = images[i : i + 1, :, t : t + ch, l : l + cw].float() / 255
        ref = F.interpolate(crop, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)[0]
        torch.testing.assert_close(out[i], ref.flip(-1) if i % 2 else ref, atol=ATOL, rtol=0)


def test_uncropped_params_flip_only_and_match_per_image() -> None:
    # Views cropped by the loader (crop None): the batch only flips them, then photometrics.
    images = natural_images(4, 16, 16, seed=4)
    ps = [identity_params(None, None), identity_params(None, None, flip=True),
          identity_params(None, None, flip=True, color_applied=True, color_order=(3, 1, 0, 2),
                          brightness=1.3, contrast=0.7, saturation=1.5, hue=0.1),
          identity_params(None, None, grayscale=True, solarize=True)]  # fmt: skip
    _assert_rows_match(ViewTransform(16), images, ps)
    out = render_views(ViewTransform(16), images, stack_params(ps))
    assert torch.equal(out[0], images[0].float() / 255)
    assert torch.equal(out[1], images[1].float().flip(-1) / 255)


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
    ps = [identity_params(h, w, color_applied=True, color_order=o, **changes) for o in orders]
    _assert_rows_match(ViewTransform(h), images, ps)


def test_grayscale_blur_solarize_match_per_image() -> None:
    h = w = 40
    images = natural_images(6, h, w, seed=2)
    images[5] = torch.arange(256, dtype=torch.uint8).repeat(7)[: h * w].view(h, w)  # all levels
    view = ViewTransform(40, blur_kernel_frac=0.2, solarize_threshold=200)
    changes: list[dict[str, object]] = [
        {"grayscale": True},
        {"blur_applied": True, "blur_sigma": 0.1},
        {"blur_applied": True, "blur_sigma": 2.0},
        {"blur_applied": True, "blur_sigma": 1.3, "grayscale": True},
        {"solarize": True},
        {"solarize": True},  # pixels exactly on the threshold: must agree too
    ]
    _assert_rows_match(view, images, [identity_params(h, w, **c) for c in changes])
    tiny = [identity_params(h, w, crop=(0, 0, 3, 3), **c) for c in changes]
    _assert_rows_match(ViewTransform(3, blur_p=1.0), images, tiny)


# ---------------------------------------------------------------- the whole pipeline


@pytest.mark.parametrize(
    ("view_a", "view_b", "hw"),
    [
        (ViewTransform(32), None, (32, 32)),
        (ViewTransform(64, solarize_p=0.5), None, (72, 90)),  # non-square source
        (ViewTransform(48, blur_p=1.0, gray_p=0.5, color_strength=2.0), None, (100, 40)),
        (ViewTransform(24, solarize_p=1.0, blur_p=0.5, solarize_threshold=100),
         ViewTransform(24, gray_p=1.0, blur_p=1.0, crop_scale=(0.5, 1.0)), (50, 30)),
        (ViewTransform(16, crop_scale=(0.5, 1.0)), None, (3, 90)),  # crops fall back
    ],
)  # fmt: skip
def test_views_match_per_image_pipeline(
    view_a: ViewTransform, view_b: ViewTransform | None, hw: tuple[int, int]
) -> None:
    n = 24
    images, keys = natural_images(n, *hw, seed=hw[0]), keys_for(n, seed=hw[1])
    a, b = BatchedTwoViewTransform(view_a, view_b)(images, keys)
    per_image = TwoViewTransform(view_a, view_b)
    views = (view_a, view_b or view_a)
    for i, key in enumerate(keys.tolist()):
        for v, (ours, theirs) in enumerate(zip((a[i], b[i]), per_image(images[i], key))):
            _assert_close_up_to_solarize(ours, theirs, views[v].solarize_threshold / 255)


def test_from_crops_matches_per_image_apply() -> None:
    view_a = ViewTransform(32, solarize_p=0.5, blur_p=0.5)
    view_b = ViewTransform(32, gray_p=0.6, color_p=1.0, blur_p=1.0, solarize_threshold=60)
    n = 32
    crops_a, crops_b, keys = natural_images(n, 32, 32, seed=5), natural_images(n, 32, 32, seed=6), keys_for(n)
    bt = BatchedTwoViewTransform(view_a, view_b)
    a, b = bt.from_crops(crops_a, crops_b, keys)
    pa, pb = view_a.sample(keys, 0), view_b.sample(keys, 1)
    assert pa.flip.any() and pa.solarize.any() and pb.grayscale.any()
    for i in range(n):
        _assert_close_up_to_solarize(a[i], view_a.apply(crops_a[i], pa, i), view_a.solarize_threshold / 255)
        _assert_close_up_to_solarize(b[i], view_b.apply(crops_b[i], pb, i), view_b.solarize_threshold / 255)
    # The same views from keys given as a list or a tensor.
    a2, b2 = bt.from_crops(crops_a, crops_b, keys.tolist())
    assert torch.equal(a, a2) and torch.equal(b, b2)

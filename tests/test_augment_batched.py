"""simclr.augment.batched renders, to float rounding, the views the per-image pipeline renders
from the same parameters; determinism, devices and errors."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _images import (
    identity_params,
    natural_images,
    random_image,
)

from simclr.augment import (
    BatchedTwoViewTransform,
    BatchViewParams,
    TwoViewTransform,
    ViewParams,
    ViewTransform,
    render_views,
)
from simclr.errors import SimCLRError

BIG_SEEDS = [2**32 + 7, 2**63 - 1, 2**64 - 1]
pytestmark = pytest.mark.usefixtures("one_thread")

# Rendering tolerance. The batched ops compute the same formulas in another order (resize
# weights summed by a matmul, hue through a branch-free HSV map), so float32 results differ
# by rounding: seen <= 5e-6. 1e-5 is ~80 float32 ulps at 1.0 and 400x below one uint8 step.
ATOL = 1e-5


# ---------------------------------------------------------------- rendering, op by op



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
    ps = [identity_params(h, w, crop=c, flip=i % 2 == 1) for i, c in enumerate(crops)]
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
    ps = [identity_params(h, w, color_applied=True, color_order=o, **changes) for o in orders]
    _assert_rows_match(ViewTransform(h), images, ps)


def test_grayscale_blur_solarize_match_per_image() -> None:
    h = w = 40
    images = natural_images(6, h, w, seed=2)
    images[5] = torch.arange(256, dtype=torch.uint8).repeat(7)[: h * w].view(h, w)  # all levels
    view = ViewTransform(40, blur_kernel_frac=0.2, solarize_threshold=200)
    ps = [
        identity_params(h, w, grayscale=True),
        identity_params(h, w, blur_applied=True, blur_sigma=0.1),
        identity_params(h, w, blur_applied=True, blur_sigma=2.0),
        identity_params(h, w, blur_applied=True, blur_sigma=1.3, grayscale=True),
        identity_params(h, w, solarize=True),
        identity_params(h, w, solarize=True),  # pixels exactly on the threshold: must agree too
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



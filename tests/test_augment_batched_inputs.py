"""simclr.augment.batched: views depend only on their keys (not the batch, not the global RNG);
shapes, dtypes, devices and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _images import ATOL, identity_params, keys_for, natural_images, random_image

from simclr.augment import (
    BatchedTwoViewTransform,
    ViewTransform,
    render_views,
)
from simclr.errors import SimCLRError

pytestmark = pytest.mark.usefixtures("one_thread")





# ---------------------------------------------------------------- determinism


def test_same_keys_same_views_whatever_the_batch() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(48, blur_p=0.5, solarize_p=0.3))
    images, keys = natural_images(16, 50, 50, seed=3), keys_for(16)
    a, b = bt(images, keys)
    a2, b2 = bt(images, keys)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    pa, pb = bt(images[order], keys[order.numpy()])
    torch.testing.assert_close(pa, a[order], atol=1e-6, rtol=0)
    torch.testing.assert_close(pb, b[order], atol=1e-6, rtol=0)
    sa, sb = bt(images[3:5], keys[3:5])
    torch.testing.assert_close(sa, a[3:5], atol=1e-6, rtol=0)
    torch.testing.assert_close(sb, b[3:5], atol=1e-6, rtol=0)
    assert not torch.equal(a, b)
    assert not torch.equal(bt(images, keys_for(16, seed=1))[0], a)
    # Loader-cropped views too.
    ua, ub = (v.mul(255).round().to(torch.uint8) for v in (a, b))
    ca, cb = bt.from_crops(ua, ub, keys)
    qa, qb = bt.from_crops(ua[order], ub[order], keys[order.numpy()])
    torch.testing.assert_close(qa, ca[order], atol=1e-6, rtol=0)
    torch.testing.assert_close(qb, cb[order], atol=1e-6, rtol=0)
    sa, sb = bt.from_crops(ua[3:5], ub[3:5], keys[3:5])
    torch.testing.assert_close(sa, ca[3:5], atol=1e-6, rtol=0)
    torch.testing.assert_close(sb, cb[3:5], atol=1e-6, rtol=0)


def test_global_rng_neither_used_nor_advanced() -> None:
    bt, images = BatchedTwoViewTransform(ViewTransform(16, blur_p=0.5)), natural_images(4, 20, 20)
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    out = bt(images, [1, 2, 3, 4])
    crops = bt.from_crops(out[0].mul(255).to(torch.uint8), out[1].mul(255).to(torch.uint8), [1, 2, 3, 4])
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    torch.manual_seed(5)
    np.random.seed(5)
    again = bt(images, [1, 2, 3, 4])
    assert torch.equal(again[0], out[0]) and torch.equal(again[1], out[1])
    assert torch.equal(bt.from_crops(out[0].mul(255).to(torch.uint8), out[1].mul(255).to(torch.uint8),
                                     [1, 2, 3, 4])[0], crops[0])  # fmt: skip


def test_grayscale_on_or_off_changes_nothing_else() -> None:
    # Each op reads its own draws, so forcing grayscale on renders the grayscale of the
    # very views rendered with it off: same crops, flips and colour jitter.
    images, keys = natural_images(16, 40, 56, seed=7), keys_for(16)
    off = BatchedTwoViewTransform(ViewTransform(32, gray_p=0.0))(images, keys)
    on = BatchedTwoViewTransform(ViewTransform(32, gray_p=1.0))(images, keys)
    luma = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    for x, y in zip(off, on):
        torch.testing.assert_close(y, (x * luma).sum(1, keepdim=True).expand_as(x), atol=ATOL, rtol=0)


def test_grayscale_rate_in_rendered_views() -> None:
    view = ViewTransform(8, gray_p=0.3, color_p=0.0)
    n = 1200
    images = natural_images(1, 16, 16).expand(n, -1, -1, -1)
    a, b = BatchedTwoViewTransform(view)(images, keys_for(n))
    for out in (a, b):
        gray = ((out[:, 0] == out[:, 1]) & (out[:, 1] == out[:, 2])).flatten(1).all(1)
        rate, se = float(gray.float().mean()), (0.3 * 0.7 / n) ** 0.5
        assert abs(rate - 0.3) < 4 * se


# ---------------------------------------------------------------- shapes, devices, inputs


def test_shapes_dtype_range_and_inputs() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(20, solarize_p=0.5, blur_p=0.5))
    images = natural_images(5, 9, 31)
    keys = keys_for(5)
    channels_last = images.contiguous(memory_format=torch.channels_last)
    for batch in (images, list(images), images.float() / 255, channels_last):
        a, b = bt(batch, keys)
        for out in (a, b):
            assert out.shape == (5, 3, 20, 20) and out.dtype == torch.float32
            assert out.is_contiguous() and out.device == images.device
            assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    torch.testing.assert_close(bt(images.float() / 255, keys)[0], bt(images, keys)[0], atol=ATOL, rtol=0)
    # Keys as a list, numpy array of another dtype, a tensor or a range: the same views.
    small = [int(k) % 2**62 for k in keys]
    ref = bt(images, small)
    for same in (np.array(small, dtype=np.int64), torch.tensor(small), tuple(small)):
        assert torch.equal(bt(images, same)[0], ref[0])
    assert torch.equal(bt(images, range(5))[1], bt(images, [0, 1, 2, 3, 4])[1])
    one = bt(random_image(1, 1)[None], [0])[0]
    assert one.shape == (1, 3, 20, 20)
    assert repr(bt).startswith("BatchedTwoViewTransform(ViewTransform(size=20")
    assert bt.size == 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    bt = BatchedTwoViewTransform(ViewTransform(64, solarize_p=0.2, blur_p=0.5))
    images, keys = natural_images(32, 72, 72), keys_for(32)
    cpu = bt(images, keys)
    gpu = bt(images.cuda(), keys)
    crops = [v.mul(255).round().to(torch.uint8) for v in cpu]
    cpu_c = bt.from_crops(*crops, keys)
    gpu_c = bt.from_crops(*(c.cuda() for c in crops), keys.tolist())
    for c, g in zip(cpu + cpu_c, gpu + gpu_c):
        assert g.device.type == "cuda"
        bad = (g.cpu() - c).abs() > 1e-4  # TF32 off by default; rounding differs by device
        assert float(bad.float().mean()) < 1e-4
    small = torch.arange(32, device="cuda")  # keys as a CUDA tensor
    assert torch.equal(bt(images.cuda(), small)[0].cpu(), bt(images.cuda(), list(range(32)))[0].cpu())


@pytest.mark.parametrize(
    ("images", "keys", "match"),
    [
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [0, 1], "images"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), [0], "images"),
        (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), [], "images"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.int32), [0, 1], "uint8"),
        ([torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3, 9, 8, dtype=torch.uint8)],
         [0, 1], "one shape"),
        ("not images", [0], "images"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0], "one key"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 7, "one key"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, -1], "keys must be integers"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, 2**64], "keys must be integers"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [0, 1.5], "keys must be integers"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [True, 1], "keys must be integers"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.tensor([0.0, 1.0]), "keys must be integers"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), None, "keys must be integers"),
    ],
)  # fmt: skip
def test_bad_input_raises_one_line(images: object, keys: object, match: str) -> None:
    with pytest.raises(SimCLRError, match=match) as info:
        BatchedTwoViewTransform(ViewTransform(8))(images, keys)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_bad_construction_params_and_crops() -> None:
    with pytest.raises(SimCLRError, match="view_a"):
        BatchedTwoViewTransform("v")  # type: ignore[arg-type]
    with pytest.raises(SimCLRError, match="view_b"):
        BatchedTwoViewTransform(ViewTransform(8), ViewTransform(16))
    view = ViewTransform(8)
    errors = {
        "params row": lambda: render_views(view, torch.zeros(3, 3, 8, 8, dtype=torch.uint8),
                                           view.sample([1, 2], 0, 8, 8)),
        "uncropped params need 8x8": lambda: render_views(view, torch.zeros(2, 3, 9, 9, dtype=torch.uint8),
                                                          view.sample([1, 2])),
        "one key": lambda: BatchedTwoViewTransform(view).from_crops(
            torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, 3, 8, 8, dtype=torch.uint8), [1, 2, 3]),
        "images must be a tensor": lambda: BatchedTwoViewTransform(view).from_crops(
            torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3, 8, 8, dtype=torch.uint8), [1]),
    }  # fmt: skip
    for match, call in errors.items():
        with pytest.raises(SimCLRError, match=match) as info:
            call()
        assert "\n" not in str(info.value)


def test_render_views_rejects_crop_outside_images() -> None:
    params = identity_params(10, 10, crop=(5, 0, 6, 10))
    with pytest.raises(SimCLRError, match="crop"):
        render_views(ViewTransform(8), torch.zeros(1, 3, 10, 10, dtype=torch.uint8), params)

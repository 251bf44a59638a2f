"""Tests for simclr.augment.view: ViewTransform output, what each op does, argument checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _images import identity_params
from _images import random_image as _image

from simclr.augment import ViewTransform, sample_keys
from simclr.errors import SimCLRError

pytestmark = pytest.mark.usefixtures("one_thread")
# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("hw", [(96, 96), (20, 20), (5, 7), (1, 1), (300, 41), (33, 200)])
@pytest.mark.parametrize("size", [32, 96])
def test_output_shape_dtype_range(hw: tuple[int, int], size: int) -> None:
    t = ViewTransform(size, solarize_p=0.5, blur_p=0.5)
    for key in sample_keys(1, 0, range(3)).tolist():
        out = t(_image(*hw), key)
        assert out.shape == (3, size, size) and out.dtype == torch.float32
        assert out.is_contiguous() and 0.0 <= out.min() and out.max() <= 1.0


# ---------------------------------------------------------------- what each op does


def test_identity_params_equal_plain_resize() -> None:
    img = _image(50, 70)
    out = ViewTransform(32).apply(img, identity_params(50, 70))
    expected = F.interpolate(img[None].float() / 255, size=(32, 32), mode="bilinear",
                             align_corners=False, antialias=True)[0]  # fmt: skip
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_crop_selects_region() -> None:
    img = _image(40, 50)
    out = ViewTransform(16).apply(img, identity_params(40, 50, crop=(3, 5, 16, 16)))
    torch.testing.assert_close(out, img[:, 3:19, 5:21].float() / 255, atol=1e-7, rtol=0)


def test_flip_and_grayscale() -> None:
    t, img = ViewTransform(24), _image(30, 40)
    plain = t.apply(img, identity_params(30, 40))
    assert torch.equal(t.apply(img, identity_params(30, 40, flip=True)), torch.flip(plain, dims=[-1]))
    gray = t.apply(img, identity_params(30, 40, grayscale=True))
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
    bc = t.apply(img, identity_params(16, 16, color_order=(0, 1, 2, 3), **on))
    cb = t.apply(img, identity_params(16, 16, color_order=(1, 3, 2, 0), **on))
    torch.testing.assert_close(bc, contrast(bright(x, 1.7), 0.4), atol=1e-5, rtol=0)
    torch.testing.assert_close(cb, bright(contrast(x, 0.4), 1.7), atol=1e-5, rtol=0)
    assert not torch.allclose(bc, cb, atol=1e-3)
    desat = t.apply(img, identity_params(16, 16, color_applied=True, saturation=0.0))
    torch.testing.assert_close(desat[0], desat[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(desat[1], desat[2], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("hue", "rgb"), [(1 / 3, (0, 1, 0)), (-1 / 3, (0, 0, 1)), (0.5, (0, 1, 1))]
)
def test_hue_rotates_red(hue: float, rgb: tuple[int, int, int]) -> None:
    red = torch.zeros(3, 8, 8, dtype=torch.uint8)
    red[0] = 255
    out = ViewTransform(8).apply(red, identity_params(8, 8, color_applied=True, hue=hue))
    expected = torch.tensor(rgb, dtype=torch.float32)[:, None, None].expand(3, 8, 8)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_blur_matches_reflect_padded_gaussian() -> None:
    t, img, sigma = ViewTransform(40, blur_kernel_frac=0.2), _image(40, 40), 1.3
    assert t.blur_kernel_size == 9
    out = t.apply(img, identity_params(40, 40, blur_applied=True, blur_sigma=sigma))
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
    out = ViewTransform(1, blur_p=1.0)(_image(9, 9), 0)
    assert out.shape == (3, 1, 1)


def test_call_is_sample_then_apply() -> None:
    t, img = ViewTransform(24, solarize_p=0.5, blur_p=0.5), _image(30, 41)
    for key in sample_keys(2, 5, range(6)).tolist():
        for view in (0, 1):
            params = t.sample([key], view, 30, 41)
            assert torch.equal(t(img, key, view), t.apply(img, params))
    assert torch.equal(t(img, 3), t(img, 3, 0)) and not torch.equal(t(img, 3, 0), t(img, 3, 1))


def test_apply_reads_the_given_row() -> None:
    t, img = ViewTransform(16, solarize_p=0.5), _image(20, 20)
    keys = sample_keys(0, 0, range(8))
    params = t.sample(keys, 0, 20, 20)
    for row in range(8):
        assert torch.equal(t.apply(img, params, row), t(img, int(keys[row])))
        assert torch.equal(t.apply(img, params, row), t.apply(img, params.take([row])))


def test_uncropped_params_take_the_image_as_the_view() -> None:
    t, img = ViewTransform(16), _image(16, 16)
    out = t.apply(img, identity_params(None, None, flip=True))
    assert torch.equal(out, img.flip(-1).float() / 255)


@pytest.mark.parametrize("threshold", [128, 0, 200])
def test_solarize_inverts_at_or_above_threshold(threshold: int) -> None:
    img = torch.arange(256, dtype=torch.uint8).view(16, 16).expand(3, 16, 16).contiguous()
    t = ViewTransform(16, solarize_threshold=threshold)
    out = t.apply(img, identity_params(16, 16, solarize=True))
    p = img.float()
    expected = torch.where(p >= threshold, 255 - p, p) / 255
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("crop", [(5, 0, 6, 10), (0, -1, 4, 4), (0, 0, 0, 3), (0, 8, 2, 3)])
def test_apply_rejects_crop_outside_image(crop: tuple[int, int, int, int]) -> None:
    with pytest.raises(SimCLRError, match="does not fit") as info:
        ViewTransform(8).apply(_image(10, 10), identity_params(10, 10, crop=crop))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("image", "key", "match"),
    [
        (torch.zeros(1, 8, 8, dtype=torch.uint8), 0, "image"),
        (torch.zeros(3, 0, 8, dtype=torch.uint8), 0, "image"),
        ("image", 0, "image"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), -1, "keys must be integers"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), 2**64, "keys must be integers"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), 1.5, "keys must be integers"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), [[1]], "keys must be integers"),
    ],
)
def test_bad_call_raises_one_line(image: object, key: object, match: str) -> None:
    with pytest.raises(SimCLRError, match=match) as info:
        ViewTransform(8)(image, key)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


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

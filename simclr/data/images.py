"""Decode one image file into a uint8 RGB tensor, whatever its on-disk mode.

All failures on user files (missing, zero-byte, corrupt, truncated, unsupported
mode) surface as a one-line ``SimCLRError`` naming the file; ``image_problem`` gives the
same verdict as a value, for checking a whole folder up front.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from simclr.errors import SimCLRError

IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# Modes that carry an alpha channel; transparent pixels are composited onto black
# so that "invisible" colour data does not leak into training.
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

_EXIF_ORIENTATION = 0x0112


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for a non-hidden file name with one of ``IMG_EXTENSIONS`` (any case)."""
    base = os.path.basename(os.fspath(path))
    return not base.startswith(".") and base.lower().endswith(IMG_EXTENSIONS)


def _reason(path: str, exc: BaseException) -> str:
    """One line saying why ``path`` did not decode; PIL's own words where they are clear."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, UnidentifiedImageError):
        try:
            if os.path.getsize(path) == 0:
                return "the file is empty (0 bytes)"
        except OSError:
            pass
        return "not an image format PIL can read (a corrupt file, or another kind of file with an image extension)"
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def _reading(path: str) -> Iterator[None]:
    """Turn any decoder failure into a one-line SimCLRError naming ``path``.

    Decoders raise a zoo of types on bad files (OSError, SyntaxError, ValueError,
    struct.error, DecompressionBombError, ...), hence the broad catch.
    """
    try:
        yield
    except SimCLRError:
        raise
    except Exception as exc:  # noqa: BLE001 - see docstring
        raise SimCLRError(f"cannot read image '{path}': {_reason(path, exc)}") from exc


def _high_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """16/32-bit integer or float single-channel image -> uint8 [H, W].

    Integer modes ("I;16*", "I") are taken as 16-bit samples (how PNG/TIFF store
    them), so the full 0..65535 range maps onto 0..255. Float ("F") data in [0, 1]
    is scaled by 255, anything larger is assumed to already be 0..255.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        data = np.nan_to_num(arr.astype(np.float64))
        if data.size and data.max() <= 1.0:
            data = data * 255.0
        return np.clip(np.rint(data), 0, 255).astype(np.uint8)
    data = np.clip(arr.astype(np.int64), 0, 65535)
    # +128 rounds to nearest; 257 = 65535 / 255 maps both ends exactly.
    return ((data + 128) // 257).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit "RGB"."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_high_depth_to_uint8(img)).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    if mode == "RGB":
        return img
    return img.convert("RGB")


def _orientation(img: Image.Image) -> int:
    # Only formats that carry EXIF in their header: Pillow's PNG getexif() decodes the whole image.
    if img.format not in ("JPEG", "MPO", "TIFF", "WEBP") and "exif" not in img.info:
        return 1
    # Broken EXIF is cosmetic, so it must not make an otherwise readable image fail.
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001
        return 1


def _apply_exif_orientation(img: Image.Image) -> Image.Image:
    # Phone photos are stored sideways with an EXIF flag; honour it.
    if _orientation(img) != 1:
        try:
            return ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001
            pass
    return img


def open_rgb(path: str | os.PathLike[str], max_side: int | None = None) -> Image.Image:
    """Fully decode ``path`` into an 8-bit RGB PIL image.

    Args:
        path: image file.
        max_side: if given, shrink (keeping aspect) so neither side exceeds it;
            JPEGs are then decoded at reduced scale, which is much faster.

    Raises:
        SimCLRError: "cannot read image '<path>': <reason>".
    """
    path = os.fspath(path)
    with _reading(path):
        return _decode(path, max_side)


def _decode(path: str, max_side: int | None) -> Image.Image:
    with Image.open(path) as img:
        if max_side is not None:
            img.draft("RGB", (max_side, max_side))
        img.load()
        rgb = _to_rgb(_apply_exif_orientation(img))
        if max_side is not None:
            rgb.thumbnail((max_side, max_side))
        # Pixels are loaded, so the result stays valid after the file is closed.
        return rgb


def image_problem(path: str | os.PathLike[str], max_side: int = 64) -> str | None:
    """Why ``path`` cannot be a training image (one line), or None when it decodes.

    The whole file is decoded, as training will (a header alone misses truncation),
    but at reduced scale where the format allows it (JPEG), so a check costs a
    fraction of a full decode. Images smaller than the crop are fine: views upsample.
    """
    path = os.fspath(path)
    try:
        _decode(path, max_side)
    except Exception as exc:  # noqa: BLE001 - the same zoo of decoder errors as in _reading
        return _reason(path, exc)
    return None


def image_shorter_side(path: str | os.PathLike[str]) -> int:
    """Shorter side in pixels, read from the header only (no pixel decode)."""
    path = os.fspath(path)
    with _reading(path), Image.open(path) as img:
        return int(min(img.size))


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a uint8 tensor [3, H, W] in RGB order.

    Grayscale is repeated to 3 channels, alpha/transparency is composited on
    black, palettes are expanded, 16-bit data is scaled to 8 bits.

    Raises:
        SimCLRError: the file is missing, empty, corrupt, truncated or unsupported.
    """
    rgb = open_rgb(path)
    arr = np.array(rgb, dtype=np.uint8)  # [H, W, 3]; a writable copy for from_numpy
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def load_crops(
    path: str | os.PathLike[str], boxes_for: Callable[[int, int], np.ndarray], size: int
) -> torch.Tensor:
    """Decode ``path`` and return crops of it resized to ``size`` x ``size``: uint8 [V, 3, size, size].

    ``boxes_for(height, width)`` gets the upright image's size and returns the crops as
    int [V, 4] (top, left, h, w). When every crop is at least twice ``size`` on each side,
    a JPEG is decoded at a reduced scale (PIL ``draft``: 1/2, 1/4 or 1/8), still at least
    ``size`` pixels across each crop, so large photos cost a fraction of a full decode.
    Each crop is resized with antialiased bilinear filtering from its own pixels only, like
    ``TF.resize`` of the cropped tensor (to half a uint8 level at full-scale decoding).

    Raises:
        SimCLRError: "cannot read image '<path>': <reason>".
    """
    path = os.fspath(path)
    with _reading(path), Image.open(path) as img:
        if _orientation(img) != 1:  # a sideways phone photo: decode all of it, turn it upright
            img.load()
            rgb = _to_rgb(_apply_exif_orientation(img))
            boxes = np.asarray(boxes_for(rgb.height, rgb.width))
            scale_x = scale_y = 1.0
        else:
            width, height = img.size
            boxes = np.asarray(boxes_for(height, width))
            shrink = min(int(boxes[:, 2].min()), int(boxes[:, 3].min())) / size
            if shrink >= 2:
                img.draft("RGB", (math.ceil(width / shrink), math.ceil(height / shrink)))
            img.load()
            # draft reduces by an integer factor (1, 2, 4, 8) and rounds the sides up.
            scale_x = scale_y = 1.0 / max(1, round(width / img.size[0]))
            rgb = _to_rgb(img)
        crops = [np.asarray(_resized_crop(rgb, box, scale_x, scale_y, size)) for box in boxes.tolist()]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def _resized_crop(rgb: Image.Image, box: list[int], scale_x: float, scale_y: float, size: int) -> Image.Image:
    top, left, h, w = box
    if scale_x == scale_y == 1.0:
        # Crop first: resizing with a box would also filter in pixels just outside the crop.
        return rgb.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
    # Reduced-scale decode: the crop covers >= 2 * size pixels a side, so edges barely matter.
    return rgb.resize((size, size), Image.BILINEAR,
                      box=(left * scale_x, top * scale_y, (left + w) * scale_x, (top + h) * scale_y))


def upright_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of the image as shown (EXIF orientation applied), from the header only."""
    height, width, _ = read_header(path)
    return height, width


def read_header(path: str | os.PathLike[str]) -> tuple[int, int, bool]:
    """(height, width) as shown, and whether the file is a plain JPEG (RGB or gray, upright)
    that ``torchvision.io.decode_jpeg`` decodes alike on every device."""
    path = os.fspath(path)
    with _reading(path), Image.open(path) as img:
        width, height = img.size
        orientation = _orientation(img)
        plain_jpeg = img.format == "JPEG" and img.mode in ("RGB", "L") and orientation == 1
        return (width, height, plain_jpeg) if orientation in (5, 6, 7, 8) else (height, width, plain_jpeg)


def decode_jpeg_crops(encoded: list[torch.Tensor], boxes: list[np.ndarray], paths: list[str], size: int,
                      device: torch.device) -> list[torch.Tensor]:
    """JPEG files (raw bytes, uint8 [n]) decoded on ``device`` (nvJPEG on CUDA) and cut into crops.

    ``boxes[i]``: int [V, 4] (top, left, h, w) in the upright image. Returns uint8
    [V, 3, size, size] per file, on ``device``; a file that does not decode raises
    "cannot read image '<path>': …".
    """
    with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec; its decoder still works
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

    if device.type == "cuda":
        # torchvision's nvJPEG path writes from its own stream without waiting for ours
        # (pytorch/vision#9606): let queued work finish first, and the decode before use.
        torch.cuda.synchronize(device)
    try:
        images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    except RuntimeError:  # find the file that failed, for the message
        images = []
        for data, path in zip(encoded, paths):
            with _reading(path):
                images.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out = []
    for image, crop_boxes in zip(images, boxes):
        out.append(torch.stack([crop_resize_uint8(image, box, size) for box in np.asarray(crop_boxes).tolist()]))
    return out


def crop_resize_uint8(image: torch.Tensor, box: list[int], size: int) -> torch.Tensor:
    """uint8 [3, H, W] (any device) -> the crop ``box`` (top, left, h, w) resized to uint8 [3, size, size]
    with antialiased bilinear filtering from the crop's own pixels, like ``TF.resize``."""
    top, left, h, w = box
    x = image[None, :, top : top + h, left : left + w].float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].round_().clamp_(0, 255).to(torch.uint8)

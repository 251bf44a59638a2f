"""SimCLR views of a whole uint8 batch at once, on the batch's device (GPU or CPU).

Parameters come from the same keyed sampler as the per-image pipeline
(``ViewTransform.sample``), so both pipelines give the same crops, flips, colour factors and
orders for the same keys; only the rendering differs, by float rounding. Rendering uses
whole-batch tensor ops:

- crop + resize: one matrix product per axis, ``Wy[b] @ image[b] @ Wx[b]^T``, with
  ``resize_matrices`` holding the crop offset and the antialiased bilinear weights of
  ``TF.resize`` (and the flip, as reversed rows of ``Wx``). This reproduces the per-image
  resize to float rounding, which neither ``roi_align`` (box-averaged bilinear samples)
  nor ``grid_sample`` (no antialiasing when shrinking) does. Views cropped already (by
  loader workers, ``params.crop`` None) only get their flip here.
- colour jitter: for each of the 4 positions and each op, the op runs only on the
  samples that have it at that position (16 small groups, never 16 full passes).
- grayscale, blur and solarize: only on the samples that drew them; blur is one grouped
  convolution with a kernel per sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from simclr.augment import _batched_ops as ops
from simclr.augment.keys import as_keys
from simclr.augment.two_view import ViewPair
from simclr.augment.view import BRIGHTNESS, CONTRAST, HUE, SATURATION, ViewParams, ViewTransform
from simclr.errors import SimCLRError

_COLOR_OPS: dict[int, Callable[[Tensor, Tensor], Tensor]] = {
    BRIGHTNESS: ops.adjust_brightness, CONTRAST: ops.adjust_contrast, SATURATION: ops.adjust_saturation, HUE: ops.adjust_hue}


class BatchedTwoViewTransform(ViewPair):
    """``TwoViewTransform`` for a batch: the same two views per (image, key), all at once.

    ``view_a`` / ``view_b`` (default ``view_a``) are the ``ViewTransform``s whose settings
    are used. Output views are float32 [B, 3, size, size] in [0, 1] on the images' device.
    """

    def __call__(self, images: Tensor, keys: object) -> tuple[Tensor, Tensor]:
        """uint8 [B, 3, H, W] (one size) and B keys -> two float32 [B, 3, size, size] in [0, 1]."""
        images = check_image_batch(images)
        keys = _check_count(as_keys(keys), images.shape[0])
        height, width = int(images.shape[-2]), int(images.shape[-1])
        return (render_views(self.view_a, images, self.view_a.sample(keys, 0, height, width)),
                render_views(self.view_b, images, self.view_b.sample(keys, 1, height, width)))

    def from_crops(self, crops_a: Tensor, crops_b: Tensor, keys: object) -> tuple[Tensor, Tensor]:
        """Views cropped and resized already (uint8 [B, 3, size, size] each, by the loader):
        flip, colour, grayscale, blur and solarize drawn for ``keys`` and applied here."""
        keys = as_keys(keys)
        return (render_views(self.view_a, crops_a, self.view_a.sample(keys, 0)),
                render_views(self.view_b, crops_b, self.view_b.sample(keys, 1)))


def render_views(view: ViewTransform, images: Tensor, params: ViewParams) -> Tensor:
    """Apply ``params`` to ``images`` with ``view``'s settings, all samples at once.

    ``images``: uint8 [B, 3, H, W] (or float in [0, 1]) on any device; ``params``: B rows
    (with ``crop`` None, the images must be ``view.size`` square: they are the crops).
    Returns float32 [B, 3, view.size, view.size] in [0, 1] on the images' device; row i
    matches ``view.apply(images[i], params, i)`` up to float rounding.
    """
    images = check_image_batch(images)
    _check_count(params.flip, images.shape[0])
    height, width = images.shape[-2:]
    if params.crop is None and (height, width) != (view.size, view.size):
        raise SimCLRError(f"uncropped params need {view.size}x{view.size} images, got {height}x{width}")
    if params.crop is not None:
        top, left, h, w = params.crop.T
        if ((h < 1) | (w < 1) | (top < 0) | (left < 0) | (top + h > height) | (left + w > width)).any():
            raise SimCLRError(f"params.crop must lie inside the {height}x{width} images")
    out = _crop_resize(view.size, images.to(torch.float32), params)
    if images.dtype == torch.uint8:
        # Divide after resizing, not in the weights: a crop at scale 1 then gives exactly
        # v / 255 like the per-image path, so pixels on the solarize threshold agree.
        out = out.div_(255.0)
    return _photometric(view, out.clamp_(0.0, 1.0), params)


def check_image_batch(images: object) -> Tensor:
    """Return ``images`` as one [B, 3, H, W] tensor (B, H, W >= 1), else raise SimCLRError.

    A list of same-size [3, H, W] tensors is stacked; differing sizes are an error.
    """
    if isinstance(images, (list, tuple)) and images and all(isinstance(i, Tensor) for i in images):
        shapes = {tuple(i.shape) for i in images}
        if len(shapes) != 1:
            raise SimCLRError(
                f"images of one batch must share one shape, got {sorted(shapes)}; "
                "resize or pad them to one size first"
            )
        images = torch.stack(list(images))
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise SimCLRError(f"images must be a tensor of shape [B, 3, H, W], got {shape}")
    if min(images.shape[0], images.shape[2], images.shape[3]) < 1:
        raise SimCLRError(f"images must have B, H and W >= 1, got {tuple(images.shape)}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise SimCLRError(f"images must be uint8 or floating point, got {images.dtype}")
    return images


def _check_count(rows: np.ndarray, count: int) -> np.ndarray:
    if len(rows) != count:
        raise SimCLRError(f"expected one key (params row) per image ({count}), got {len(rows)}")
    return rows


def _crop_resize(size: int, x: Tensor, params: ViewParams) -> Tensor:
    """float32 [B, 3, H, W] -> the cropped, resized and flipped [B, 3, size, size]."""
    flip = _to_device([params.flip], torch.int64, x.device)[0].bool()
    if params.crop is None:
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    batch, _, height, width = x.shape
    crop = _to_device([params.crop], torch.int64, x.device)[0]
    rows = ops.resize_matrices(crop[:, 0], crop[:, 2], height, size)  # [B, size, H]
    cols = ops.resize_matrices(crop[:, 1], crop[:, 3], width, size)  # [B, size, W]
    cols = torch.where(flip.view(-1, 1, 1), cols.flip(1), cols)  # flip = reversed output columns
    # Two plain batched products: columns on [B, 3H, W], then rows on [B, H, 3 * size].
    y = torch.bmm(x.reshape(batch, 3 * height, width), cols.transpose(1, 2))
    y = y.view(batch, 3, height, size).transpose(1, 2).reshape(batch, height, 3 * size)
    y = torch.bmm(rows, y).view(batch, size, 3, size)
    return y.permute(0, 2, 1, 3).contiguous()


def _photometric(view: ViewTransform, out: Tensor, params: ViewParams) -> Tensor:
    """Colour jitter (each sample's order), grayscale, blur, solarize on [B, 3, S, S] in place."""
    chosen = [
        params.color_applied & (params.color_order[:, position] == op)
        for position in range(4)
        for op in _COLOR_OPS
    ] + [params.grayscale, params.blur_applied, params.solarize]
    index = _to_device([np.flatnonzero(mask) for mask in chosen], torch.int64, out.device)
    factors = np.stack([params.brightness, params.contrast, params.saturation, params.hue])
    factors_t, sigma = _to_device([factors, params.blur_sigma], torch.float32, out.device)
    for group, (position, op) in enumerate((p, o) for p in range(4) for o in _COLOR_OPS):
        fn = _COLOR_OPS[op]
        _apply_to(out, index[group], lambda sub, idx, fn=fn, op=op: fn(sub, factors_t[op, idx]))
    gray, blur, solarize = index[16:]
    _apply_to(out, gray, lambda sub, idx: ops.grayscale(sub).expand(-1, 3, -1, -1))
    k = view.blur_kernel_size
    _apply_to(out, blur, lambda sub, idx: ops.gaussian_blur(sub, sigma[idx], k))
    threshold = view.solarize_threshold / 255.0
    _apply_to(out, solarize, lambda sub, idx: torch.where(sub >= threshold, 1.0 - sub, sub))
    return out.clamp_(0.0, 1.0)


def _to_device(arrays: list[np.ndarray], dtype: torch.dtype, device: torch.device) -> list[Tensor]:
    """numpy arrays -> tensors of ``dtype`` (int64 or float32) on ``device``, in one copy.

    One pinned, non-blocking copy instead of one per array: a copy from pageable memory
    waits for the device to finish its queue, which would stall the next batch's sampling.
    """
    host_dtype = np.int64 if dtype == torch.int64 else np.float32
    flat = torch.from_numpy(np.concatenate([a.ravel() for a in arrays]).astype(host_dtype))
    if device.type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    else:
        flat = flat.to(device)
    parts = flat.split([a.size for a in arrays])
    return [part.view(a.shape) for part, a in zip(parts, arrays)]


def _apply_to(out: Tensor, index: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """out[index] = fn(out[index], index) in place, for an int64 [n] index on out's device."""
    if index.numel() == 0:
        return
    if index.numel() == out.shape[0]:  # every sample: skip the gather and scatter
        out.copy_(fn(out, index))
        return
    out.index_copy_(0, index, fn(out.index_select(0, index), index))

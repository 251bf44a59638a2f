"""SimCLR views of a whole uint8 batch at once, on the batch's device (GPU or CPU).

Parameters are drawn per sample, on the CPU, exactly as the per-image ``TwoViewTransform``
draws them from the same seed (``batch_params``), so the two pipelines give the same
crops, flips, colour factors and orders; only the rendering differs, by float rounding.
Rendering uses whole-batch tensor ops:

- crop + resize: one matrix product per axis, ``Wy[b] @ image[b] @ Wx[b]^T``, with
  ``resize_matrices`` holding the crop offset and the antialiased bilinear weights of
  ``TF.resize`` (and the flip, as reversed rows of ``Wx``). This reproduces the per-image
  resize to float rounding, which neither ``roi_align`` (box-averaged bilinear samples)
  nor ``grid_sample`` (no antialiasing when shrinking) does, and it is one batched matmul.
- colour jitter: for each of the 4 positions and each op, the op runs only on the
  samples that have it at that position (16 small groups, never 16 full passes).
- grayscale, blur and solarize: only on the samples that drew them; blur is one grouped
  convolution with a kernel per sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from simclr.augment import _batched_ops as ops
from simclr.augment._torch_stream import (
    MAX_HIGH,
    WordStream,
    seed_words,
    stream_matches_torch,
)
from simclr.augment.batch_params import (
    WORDS_PER_VIEW,
    BatchViewParams,
    sample_view_batch,
)
from simclr.augment.seeding import make_generator
from simclr.augment.two_view import ViewPair
from simclr.augment.view import BRIGHTNESS, CONTRAST, HUE, SATURATION, ViewTransform
from simclr.errors import SimCLRError

_COLOR_OPS: dict[int, Callable[[Tensor, Tensor], Tensor]] = {
    BRIGHTNESS: ops.adjust_brightness,
    CONTRAST: ops.adjust_contrast,
    SATURATION: ops.adjust_saturation,
    HUE: ops.adjust_hue,
}


class BatchedTwoViewTransform(ViewPair):
    """``TwoViewTransform`` for a batch: the same two views per (image, seed), all at once.

    ``view_a`` / ``view_b`` (default ``view_a``) are the per-image ``ViewTransform``s whose
    settings are used. All images of a batch share one height and width (resize or pad
    them in the loader); output views are float32 [B, 3, size, size] in [0, 1] on the
    images' device.
    """

    def sample(
        self, seeds: Sequence[int], height: int, width: int
    ) -> tuple[BatchViewParams, BatchViewParams]:
        """Parameters of both views for B seeds and ``height`` x ``width`` sources (CPU).

        Row i equals ``(view_a.sample(h, w, g), view_b.sample(h, w, g))`` with
        ``g = make_generator(seeds[i])``, as ``TwoViewTransform`` draws them.
        """
        seeds = _check_seeds(seeds)
        if stream_matches_torch() and max(height, width) < MAX_HIGH:
            stream = WordStream(seed_words(seeds, 2 * WORDS_PER_VIEW))
            first = sample_view_batch(self.view_a, height, width, stream)
            return first, sample_view_batch(self.view_b, height, width, stream)
        return self._sample_per_image(seeds, height, width)

    def _sample_per_image(
        self, seeds: Sequence[int], height: int, width: int
    ) -> tuple[BatchViewParams, BatchViewParams]:
        # The reference path: ~25x slower, used where the fast stream cannot be trusted.
        if max(height, width) < MAX_HIGH:
            warnings.warn(
                "this torch's generator differs from simclr's fast sampler; "
                "sampling batched augmentation parameters per image (slower)",
                RuntimeWarning,
                stacklevel=3,
            )
        firsts, seconds = [], []
        for seed in seeds:
            generator = make_generator(seed)
            firsts.append(self.view_a.sample(height, width, generator))
            seconds.append(self.view_b.sample(height, width, generator))
        return BatchViewParams.stack(firsts), BatchViewParams.stack(seconds)

    def __call__(self, images: Tensor, seeds: Sequence[int]) -> tuple[Tensor, Tensor]:
        """uint8 [B, 3, H, W] and B seeds -> two float32 [B, 3, size, size] in [0, 1]."""
        images = check_image_batch(images)
        seeds = _check_seeds(seeds)
        if len(seeds) != images.shape[0]:
            raise SimCLRError(
                f"seeds must hold one seed per image ({images.shape[0]}), got {len(seeds)}"
            )
        params_a, params_b = self.sample(seeds, int(images.shape[-2]), int(images.shape[-1]))
        x, is_uint8 = images.to(torch.float32), images.dtype == torch.uint8
        first = _render(self.view_a, x, params_a, is_uint8)
        return first, _render(self.view_b, x, params_b, is_uint8)


def render_views(view: ViewTransform, images: Tensor, params: BatchViewParams) -> Tensor:
    """Apply ``params`` to ``images`` with ``view``'s settings, all samples at once.

    ``images``: uint8 [B, 3, H, W] (or float in [0, 1]) on any device; ``params``: B rows.
    Returns float32 [B, 3, view.size, view.size] in [0, 1] on the images' device; row i
    matches ``view.apply(images[i], params.view(i))`` up to float rounding.
    """
    images = check_image_batch(images)
    if len(params) != images.shape[0]:
        raise SimCLRError(f"params must have {images.shape[0]} rows, got {len(params)}")
    return _render(view, images.to(torch.float32), params, images.dtype == torch.uint8)


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


def _check_seeds(seeds: object) -> list[int]:
    if isinstance(seeds, (Tensor, np.ndarray)):
        seeds = seeds.tolist()
    if not isinstance(seeds, Sequence) or isinstance(seeds, (str, bytes)):
        raise SimCLRError(f"seeds must be a sequence of ints, got {type(seeds).__name__}")
    out = []
    for seed in seeds:
        if isinstance(seed, np.integer):
            seed = int(seed)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 64:
            raise SimCLRError(f"seeds must be integers in [0, 2**64), got {seed!r}")
        out.append(seed)
    return out


def _render(view: ViewTransform, x: Tensor, params: BatchViewParams, is_uint8: bool) -> Tensor:
    """float32 [B, 3, H, W] in [0, 1] (in [0, 255] if ``is_uint8``) -> [B, 3, size, size]."""
    batch, _, height, width = x.shape
    size = view.size
    chosen = [
        params.color_applied & (params.color_order[:, position] == op)
        for position in range(4)
        for op in _COLOR_OPS
    ] + [params.grayscale, params.blur_applied, params.solarize]
    indices = [np.flatnonzero(mask) for mask in chosen]
    ints = _to_device([params.crop, params.flip, *indices], torch.int64, x.device)
    factors = np.stack([params.brightness, params.contrast, params.saturation, params.hue])
    floats = _to_device([factors, params.blur_sigma], torch.float32, x.device)
    crop, flip, index = ints[0], ints[1].bool(), ints[2:]
    factors_t, sigma = floats

    rows = ops.resize_matrices(crop[:, 0], crop[:, 2], height, size)  # [B, size, H]
    cols = ops.resize_matrices(crop[:, 1], crop[:, 3], width, size)  # [B, size, W]
    cols = torch.where(flip.view(-1, 1, 1), cols.flip(1), cols)  # flip = reversed output columns
    # Two plain batched products: columns on [B, 3H, W], then rows on [B, H, 3 * size].
    y = torch.bmm(x.reshape(batch, 3 * height, width), cols.transpose(1, 2))
    y = y.view(batch, 3, height, size).transpose(1, 2).reshape(batch, height, 3 * size)
    y = torch.bmm(rows, y).view(batch, size, 3, size)
    out = y.permute(0, 2, 1, 3).contiguous()
    if is_uint8:
        # Divide after resizing, not in the weights: a crop at scale 1 then gives exactly
        # v / 255 like the per-image path, so pixels on the solarize threshold agree.
        out = out.div_(255.0)
    out = out.clamp_(0.0, 1.0)

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

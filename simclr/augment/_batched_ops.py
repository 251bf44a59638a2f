"""Tensor ops with one parameter per sample, the batched twins of ``ViewTransform.apply``'s ops.

Each takes float images [n, 3, H, W] in [0, 1] on any device and per-sample parameters as
tensors [n] on the same device, and follows the torchvision v2 formula of its twin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# rgb_to_grayscale / adjust_contrast / adjust_saturation weights (ITU-R 601-2 luma).
_LUMA = (0.2989, 0.587, 0.114)


def resize_matrices(start: Tensor, length: Tensor, in_size: int, out_size: int) -> Tensor:
    """Antialiased bilinear resampling of a crop along one axis, as a matrix per sample.

    ``start``, ``length``: int64 [B], the crop along this axis. Returns float32
    [B, out_size, in_size] ``M`` with ``M[b] @ signal`` equal to
    ``interpolate(signal[start:start+length], out_size, "bilinear", antialias=True)``:
    output i averages source pixels p with triangle weights ``max(0, 1 - |d|)``,
    ``d = (p + 0.5 - center_i) / support``, ``center_i = (i + 0.5) * length / out_size``,
    ``support = max(length / out_size, 1)``, renormalised over the pixels inside the crop.
    """
    scale = length.to(torch.float32) / out_size  # [B]
    support = scale.clamp(min=1.0)
    center = scale[:, None] * (torch.arange(out_size, device=start.device) + 0.5)  # [B, out]
    pixel = torch.arange(in_size, device=start.device)[None, :] - start[:, None]  # [B, in]
    d = (pixel[:, None, :] + 0.5 - center[:, :, None]) / support[:, None, None]
    weights = (1.0 - d.abs()).clamp_(min=0.0)
    inside = (pixel >= 0) & (pixel < length[:, None])
    weights = weights * inside[:, None, :]
    return weights / weights.sum(dim=-1, keepdim=True)


def grayscale(x: Tensor) -> Tensor:
    """[n, 3, H, W] -> luma [n, 1, H, W], as torchvision's rgb_to_grayscale."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)  # one fused pass; unbind + adds made five


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    # lerp(other, x, f) = x * f + other * (1 - f), in one pass.
    return torch.lerp(other.expand_as(x), x, factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """x * factor, clamped to [0, 1]; factor [n]."""
    return (x * factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend with the image's mean luma; factor [n]."""
    return _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend with the per-pixel luma; factor [n]."""
    return _blend(x, grayscale(x), factor)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate HSV hue by ``shift`` [n] (turns, in [-0.5, 0.5]); value and saturation kept.

    Hue in sextants is h6 = (g - b)/c, (b - r)/c + 2 or (r - g)/c + 4 for a red, green or
    blue maximum (c = max - min); the rotated colour is channel = max - c * clamp(min(k,
    4 - k), 0, 1) with k = (offset + h6') mod 6, offsets 5, 3, 1 for r, g, b: the HSV ->
    RGB map written without branches. Grey pixels (c = 0) are left unchanged.
    """
    r, g, b = x.unbind(dim=1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    chroma = maxc - minc
    numerator = torch.where(maxc == r, g - b, torch.where(maxc == g, b - r + 2.0 * chroma, r - g + 4.0 * chroma))
    # Grey pixels have numerator 0, so any positive divisor gives them hue 0.
    h6 = numerator.div_(chroma.clamp(min=1e-12))
    h6 = h6.add_(6.0 * shift.view(-1, 1, 1)).unsqueeze(1)
    # Channel offsets 5, 3, 1 made on the device (a host tensor would need a copy).
    offsets = torch.arange(5, 0, -2, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = torch.remainder(h6 + offsets, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    out = torch.addcmul(maxc.unsqueeze(1), chroma.unsqueeze(1), ramp, value=-1.0)
    return out.clamp_(0.0, 1.0)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur, one sigma [n] per image, reflect padding (odd kernel_size)."""
    n, c, h, w = x.shape
    taps = torch.arange(kernel_size, dtype=x.dtype, device=x.device) - (kernel_size - 1) / 2
    kernel = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # [n*c, k]
    pad = kernel_size // 2
    # Every (image, channel) is its own group, so one conv applies n different kernels.
    y = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)
    y = F.conv2d(y, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)
    return y.view(n, c, h, w)

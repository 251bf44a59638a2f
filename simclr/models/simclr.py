"""The SimCLR network: input normalisation, encoder f and projection head g."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from simclr.models.encoder import build_encoder
from simclr.models.head import ProjectionHead


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, kept inside the model so exported encoders take raw [0,1] images."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class SimCLR(nn.Module):
    """f and g of the paper. ``forward`` returns ``(h, z)``; the loss lives in ``simclr.loss``."""

    def __init__(self, encoder: nn.Module, head: ProjectionHead, normalize: Normalize) -> None:
        super().__init__()
        self.normalize = normalize
        self.encoder = encoder
        self.head = head

    @property
    def feature_dim(self) -> int:
        """Width of h (the encoder's pooled features)."""
        return int(self.encoder.feature_dim)

    def encode(self, x: Tensor) -> Tensor:
        """x: [B,3,H,W] float images in [0,1] -> h: [B, feature_dim]."""
        return self.encoder(self.normalize(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [B,3,H,W] float images in [0,1] -> (h [B, feature_dim], z [B, out_dim])."""
        h = self.encode(x)
        return h, self.head(h)


def build_simclr(
    arch: str = "resnet50",
    width: float = 1.0,
    cifar_stem: bool = False,
    head: str = "mlp",
    proj_layers: int = 2,
    hidden_dim: int | None = None,
    out_dim: int = 128,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    image_size: int | None = None,
) -> SimCLR:
    """Assemble a SimCLR network; the head's hidden width defaults to the feature width.

    ``arch``: a registered ResNet or ``timm/NAME``; ``image_size`` sizes timm models built for
    one input size (ViTs), the others ignore it.
    """
    encoder = build_encoder(arch, width, cifar_stem, image_size=image_size)
    projection = ProjectionHead(encoder.feature_dim, head, proj_layers, hidden_dim, out_dim)
    return SimCLR(encoder, projection, Normalize(mean, std))

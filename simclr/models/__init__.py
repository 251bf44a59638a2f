"""Networks: ResNet encoders f, projection heads g and the SimCLR wrapper returning (h, z)."""

from simclr.models.encoder import ARCHITECTURES, ResNetEncoder, build_encoder, use_cifar_stem
from simclr.models.head import HEADS, ProjectionHead
from simclr.models.simclr import Normalize, SimCLR, build_simclr

__all__ = [
    "ARCHITECTURES",
    "HEADS",
    "Normalize",
    "ProjectionHead",
    "ResNetEncoder",
    "SimCLR",
    "build_encoder",
    "build_simclr",
    "use_cifar_stem",
]

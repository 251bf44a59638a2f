"""Networks: encoders f (ResNets, or any timm model as ``timm/NAME``), projection heads g and the SimCLR wrapper returning (h, z)."""

from simclr.models.encoder import ARCHITECTURES, ResNetEncoder, build_encoder, check_arch, use_cifar_stem
from simclr.models.head import HEADS, ProjectionHead
from simclr.models.simclr import Normalize, SimCLR, build_simclr
from simclr.models.timm_encoder import TIMM_PREFIX, is_timm_arch

__all__ = [
    "ARCHITECTURES",
    "HEADS",
    "Normalize",
    "ProjectionHead",
    "ResNetEncoder",
    "SimCLR",
    "TIMM_PREFIX",
    "build_encoder",
    "build_simclr",
    "check_arch",
    "is_timm_arch",
    "use_cifar_stem",
]

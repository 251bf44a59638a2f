"""Encoders f(·) built by name: ResNets with a width multiplier and the CIFAR stem, or ``timm/NAME``.

The layers reuse torchvision's residual blocks and keep torchvision's parameter names
(``conv1``, ``bn1``, ``layer1`` … ``layer4``), so at width 1 with the ImageNet stem a
torchvision ResNet state dict (minus ``fc``) loads unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from simclr.errors import SimCLRError
from simclr.models.timm_encoder import TIMM_PREFIX, build_timm_encoder, check_timm_arch, is_timm_arch

Block = type[BasicBlock] | type[Bottleneck]

# name -> (block, blocks per stage); the depths of He et al. (2016), as in torchvision.
_ARCHITECTURES: dict[str, tuple[Block, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}
ARCHITECTURES: tuple[str, ...] = tuple(_ARCHITECTURES)

# Inputs this small lose too much to a stride-2 7x7 conv plus max-pool (the CIFAR stem of
# the paper's Appendix B.9 keeps their resolution).
CIFAR_STEM_MAX_SIZE = 64


class ResNetEncoder(nn.Module):
    """A ResNet without its classifier: images [B,3,H,W] -> features h [B, feature_dim]."""

    def __init__(
        self,
        block: Block,
        layers: tuple[int, int, int, int],
        width: float = 1.0,
        cifar_stem: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        widths = [max(1, round(64 * width * 2**stage)) for stage in range(4)]
        self.inplanes = widths[0]
        if cifar_stem:
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_stage(block, widths[0], layers[0], stride=1)
        self.layer2 = self._make_stage(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_stage(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_stage(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[3] * block.expansion
        self._init_weights(zero_init_residual)

    def _make_stage(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        # base_width scales a bottleneck's inner width with the multiplier, as in wide ResNets.
        kwargs = {} if block is BasicBlock else {"base_width": 64}
        stage = [block(self.inplanes, planes, stride, downsample, **kwargs)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, **kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                last_bn = getattr(module, "bn3" if isinstance(module, Bottleneck) else "bn2", None)
                if isinstance(module, (BasicBlock, Bottleneck)) and last_bn is not None:
                    nn.init.zeros_(last_bn.weight)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B,3,H,W] normalised images -> h: [B, feature_dim]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def use_cifar_stem(image_size: int, cifar_stem: bool | None = None) -> bool:
    """The stem to use: the explicit choice, else the CIFAR stem for inputs <= 64 px."""
    return image_size <= CIFAR_STEM_MAX_SIZE if cifar_stem is None else cifar_stem


def check_arch(arch: str) -> None:
    """Refuse a name that is neither registered (``ARCHITECTURES``) nor a timm model timm knows."""
    if is_timm_arch(arch):
        check_timm_arch(arch)
    elif arch not in _ARCHITECTURES:
        raise SimCLRError(f"unknown architecture '{arch}'; choose one of {', '.join(ARCHITECTURES)} or {TIMM_PREFIX}NAME (a timm model)")


def build_encoder(
    arch: str, width: float = 1.0, cifar_stem: bool = False, zero_init_residual: bool = False, image_size: int | None = None
) -> nn.Module:
    """Build an encoder by name: a registered ResNet (``ARCHITECTURES``) or ``timm/NAME``.

    Every encoder maps normalised images [B,3,H,W] to h [B, feature_dim] and has ``feature_dim``.
    ``width``, ``cifar_stem`` and ``zero_init_residual`` shape the ResNets; a timm model keeps its
    own design, and ``image_size`` sizes the ones built for one input size (ViTs).
    """
    check_arch(arch)
    if is_timm_arch(arch):
        return build_timm_encoder(arch, image_size)
    if not width > 0:
        raise SimCLRError(f"model.width must be > 0, got {width}")
    block, layers = _ARCHITECTURES[arch]
    return ResNetEncoder(block, layers, width, cifar_stem, zero_init_residual)


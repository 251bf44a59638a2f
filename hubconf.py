"""torch.hub entry points of this repository.

A trained encoder (a run folder, a checkpoint or an exported ``.safetensors``)::

    encoder = torch.hub.load("path/to/checkout", "simclr_encoder", source="local", path="runs/demo")
    h = encoder(encoder.preprocess(image)[None])        # images in [0, 1] -> h

Untrained networks: ``resnet18`` … ``resnet152`` (encoders f, with ``width`` and ``cifar_stem``),
``timm_encoder`` (any timm model as f; needs timm) and ``simclr_network`` (f, the projection
head g and the input normalisation, as pretraining builds them). ``torch.hub.list`` names them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

dependencies = ["torch", "torchvision", "safetensors", "yaml"]

# Imported under private names: torch.hub.list shows every public callable of this module.
from simclr.export import load_encoder as _load_encoder  # noqa: E402 (torch.hub reads `dependencies` first)
from simclr.models import ARCHITECTURES as _ARCHITECTURES  # noqa: E402
from simclr.models import build_encoder as _build_encoder  # noqa: E402
from simclr.models import build_simclr as _build_simclr  # noqa: E402
from simclr.models.timm_encoder import TIMM_PREFIX as _TIMM_PREFIX  # noqa: E402

if _TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from torch import nn


def simclr_encoder(path: str | Path) -> nn.Module:
    """The trained encoder of ``path`` in eval mode, as ``simclr.load_encoder`` gives it.

    ``path``: a run folder (its newest good checkpoint), a checkpoint file, or a ``.safetensors``
    or TorchScript file from ``simclr export``. It maps float RGB images in [0, 1], [B, 3, S, S],
    to h [B, D]; ``.info`` holds S, D and the normalisation, ``.preprocess`` turns one uint8
    image of any size into the input.
    """
    return _load_encoder(path)


def simclr_network(arch: str = "resnet50", **kwargs: Any) -> nn.Module:
    """An untrained SimCLR network (normalisation, encoder f, projection head g): ``forward(x) -> (h, z)``.

    ``kwargs`` are those of ``simclr.build_simclr``: ``width``, ``cifar_stem``, ``head``,
    ``proj_layers``, ``hidden_dim``, ``out_dim``, ``mean``, ``std``.
    """
    return _build_simclr(arch, **kwargs)


def timm_encoder(name: str, image_size: int | None = None) -> nn.Module:
    """An untrained timm model as encoder f (``num_classes=0``: images -> pooled features h); needs timm.

    ``name``: any ``timm.list_models()`` name, e.g. ``convnext_atto``; ``image_size`` sizes the
    models built for one input size (ViTs). ``.feature_dim`` is the width of h.
    """
    return _build_encoder(f"{_TIMM_PREFIX}{name}", image_size=image_size)


def _encoder_entry(arch: str) -> Callable[..., nn.Module]:
    def entry(width: float = 1.0, cifar_stem: bool = False, zero_init_residual: bool = False) -> nn.Module:
        return _build_encoder(arch, width, cifar_stem, zero_init_residual)

    entry.__name__ = entry.__qualname__ = arch
    entry.__doc__ = (f"An untrained {arch} encoder f: normalised images [B,3,H,W] -> h [B, feature_dim], torchvision's "
                     "parameter names. ``width`` multiplies every stage's channels; ``cifar_stem`` uses a 3x3 stride-1 "
                     "first convolution without max-pooling (the paper's choice for small images).")
    return entry


for _arch in _ARCHITECTURES:
    globals()[_arch] = _encoder_entry(_arch)

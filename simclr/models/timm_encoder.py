"""Any timm model as the encoder f: ``--arch timm/NAME`` (``pip install 'simclr-torch[timm]'``).

The model is built with ``num_classes=0``, so its forward returns its pooled features, which
SimCLR takes as h; their width (``head_hidden_size``, else ``num_features``) sizes the
projection head. Parameter names stay timm's, so a saved encoder loads into
``timm.create_model(NAME, num_classes=0)`` as it is. The weights start random: SimCLR pretrains
from scratch, and nothing is downloaded.
"""

from __future__ import annotations

import difflib
from types import ModuleType

from torch import nn

from simclr.errors import SimCLRError

TIMM_PREFIX = "timm/"


def is_timm_arch(arch: str | None) -> bool:
    """Whether ``arch`` names a timm model (``timm/NAME``)."""
    return isinstance(arch, str) and arch.startswith(TIMM_PREFIX)


def timm_name(arch: str) -> str:
    """``timm/NAME`` -> ``NAME``."""
    return arch[len(TIMM_PREFIX):]


def import_timm() -> ModuleType:
    """The timm module, or a one-line ``SimCLRError`` saying how to install it."""
    try:
        import timm
    except ImportError:
        raise SimCLRError("timm backbones need the timm package: pip install timm (or 'simclr-torch[timm]')") from None
    return timm


def check_timm_arch(arch: str) -> None:
    """Refuse a missing timm or a name timm does not know, naming close matches."""
    timm = import_timm()
    name = timm_name(arch)
    from timm.models import split_model_name_tag

    if not name or not timm.is_model(split_model_name_tag(name)[0]):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(TIMM_PREFIX + c for c in close)}?" if close else "; timm.list_models() lists them"
        raise SimCLRError(f"unknown timm model '{name}' in model.arch '{arch}'{hint}")


def _fixed_input_size(name: str) -> bool:
    """Whether the model is built for one input size (ViTs: their position embeddings)."""
    from timm.models import get_pretrained_cfg, split_model_name_tag

    config = get_pretrained_cfg(name) or get_pretrained_cfg(split_model_name_tag(name)[0])
    return bool(config is not None and config.fixed_input_size)


def build_timm_encoder(arch: str, image_size: int | None = None) -> nn.Module:
    """``timm.create_model(NAME, num_classes=0)``, randomly initialised, with ``feature_dim`` set.

    Models built for one input size (ViTs) are built for ``image_size`` (their position
    embeddings sized for it); the others take any size.
    """
    check_timm_arch(arch)
    timm = import_timm()
    name = timm_name(arch)
    kwargs = {"img_size": image_size} if image_size and _fixed_input_size(name) else {}
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SimCLRError(f"timm could not build '{name}'{f' for {image_size} px' if kwargs else ''}: {reason}") from None
    model.feature_dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return model


def timm_version() -> str:
    """The installed timm's version (recorded in exported encoders)."""
    return str(import_timm().__version__)

"""Help texts listing what the registries hold, so ``--help`` never drifts from the code."""

from __future__ import annotations


def arch_help() -> str:
    """``--arch``: the registered ResNets and the timm form."""
    from simclr.models import ARCHITECTURES, TIMM_PREFIX

    return f"{' | '.join(ARCHITECTURES)} | {TIMM_PREFIX}NAME (any timm model, e.g. {TIMM_PREFIX}convnext_atto; needs timm)"


def optimizer_help() -> str:
    """``--optimizer``: the solvers ``build_optimizer`` knows."""
    from simclr.optim import OPTIMIZERS

    return " | ".join(OPTIMIZERS)


def head_help() -> str:
    """``--head``: the projection heads."""
    from simclr.models import HEADS

    return " | ".join(HEADS)


def preset_help() -> str:
    """``--preset``: the presets shipped in the package, or a YAML path."""
    from simclr.config import available_presets

    return f"preset name ({', '.join(available_presets())}) or a path to a .yaml file"

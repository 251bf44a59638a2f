"""The paper's studies as named variants: each a config delta over one base config.

A variant is one cell of a table or figure of the paper (Chen et al. 2020, arXiv 2002.05709):
its ``delta`` (``{"section.key": value}``) is applied over the study's base config with
``simclr.config.set_value``, so every variant is an ordinary run that ``simclr pretrain --set``
could also make. Variants with the same delta (and seed) share one pretraining run: the
``layer`` study probes one MLP-head run on several layers (``features``) and reuses the
``head`` study's MLP run when both are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from simclr.errors import SimCLRError

STUDIES: tuple[str, ...] = ("head", "layer", "composition", "color-strength", "temperature", "batch-epochs", "width")
# Figure 5's ops this package implements (cutout, Sobel filtering, Gaussian noise and rotation are not),
# each with its "on" value (the paper's views; solarize as BYOL's) and its off value.
COMPOSITION_OPS: dict[str, tuple[str, Any, Any]] = {
    "crop": ("augment.crop", True, False),
    "color": ("augment.color_p", 0.8, 0.0),
    "gray": ("augment.gray_p", 0.2, 0.0),
    "blur": ("augment.blur_p", 0.5, 0.0),
    "flip": ("augment.flip_p", 0.5, 0.0),
    "solarize": ("augment.solarize_p", 0.2, 0.0),
}
COLOR_STRENGTHS: tuple[float, ...] = (0.25, 0.5, 1.0)  # Table 1 (1/8 .. 1, and auto-augment)
TEMPERATURES: tuple[float, ...] = (0.1, 0.5, 1.0)  # Table 5 (0.05 .. 1)
BATCH_SIZES: tuple[int, ...] = (64, 256)  # Figure 9 (256 .. 8192), scaled to a CPU
WIDTHS: tuple[float, ...] = (0.125, 0.25, 0.5)  # Figure 7 (ResNet-50 x1 .. x4), scaled to a CPU


@dataclass(frozen=True)
class Variant:
    """One cell of a study: a config delta, how it is trained and which layer is probed.

    ``kind``: ``simclr`` (pretrain, then linear evaluation and kNN on the frozen layer
    ``features``) or ``supervised`` (the same network trained from scratch on the labels: the
    baseline of Table 1 and Figure 7), whose ``views`` are ``simclr`` (the variant's SimCLR
    augmentation, as Table 1's supervised rows) or ``crop-flip`` (the standard supervised one).
    """

    study: str
    name: str
    delta: dict[str, Any] = field(default_factory=dict)
    kind: str = "simclr"
    features: str = "h"
    views: str = "simclr"


def parse_studies(text: str) -> tuple[str, ...]:
    """``"head,layer"`` -> ``("head", "layer")``; at least one, each in ``STUDIES``, no repeats."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise SimCLRError(f"--studies must name at least one of {', '.join(STUDIES)}, got '{text}'")
    for name in names:
        if name not in STUDIES:
            raise SimCLRError(f"unknown study '{name}'; choose from {', '.join(STUDIES)}")
    if len(set(names)) != len(names):
        raise SimCLRError(f"--studies names a study twice: '{text}'")
    return names


def composition_delta(ops: tuple[str, ...]) -> dict[str, Any]:
    """Every Figure-5 op switched off except ``ops``."""
    return {key: on if op in ops else off for op, (key, on, off) in COMPOSITION_OPS.items()}


def _head() -> list[Variant]:
    return [Variant("head", head, {"model.head": head}) for head in ("mlp", "linear", "none")]


def _layer(proj_layers: int) -> list[Variant]:
    layers = ["h", *(f"head{k}" for k in range(1, proj_layers)), "z"]
    return [Variant("layer", name, {"model.head": "mlp"}, features=name) for name in layers]


def _composition() -> list[Variant]:
    ops = list(COMPOSITION_OPS)
    cells = [(op,) for op in ops] + list(combinations(ops, 2))
    return [Variant("composition", "+".join(cell), composition_delta(cell)) for cell in cells]


def _versus_supervised(study: str, key: str, values: tuple[float, ...], label: str, views: str) -> list[Variant]:
    return [Variant(study, f"{kind}-{label}{value:g}", {key: value}, kind=kind, views=views)
            for kind in ("simclr", "supervised") for value in values]


def _temperature() -> list[Variant]:
    return [Variant("temperature", f"tau{tau:g}" + ("" if normalize else "-raw"), {"train.temperature": tau, "train.loss_normalize": normalize})
            for normalize in (True, False) for tau in TEMPERATURES]


def _batch_epochs(epochs: int) -> list[Variant]:
    lengths = sorted({max(1, round(epochs / 3)), epochs})
    return [Variant("batch-epochs", f"b{batch}-e{length}", {"train.batch_size": batch, "train.epochs": length, "train.time_budget": None})
            for batch in BATCH_SIZES for length in lengths]


def expand(study: str, proj_layers: int = 2, epochs: int = 15) -> list[Variant]:
    """The variants of ``study``, in table order.

    ``proj_layers``: the base config's MLP depth (the ``layer`` study probes each hidden
    layer); ``epochs``: the longer schedule of the ``batch-epochs`` study (the shorter is a third).
    """
    if study not in STUDIES:
        raise SimCLRError(f"unknown study '{study}'; choose from {', '.join(STUDIES)}")
    return {
        "head": _head,
        "layer": lambda: _layer(proj_layers),
        "composition": _composition,
        "color-strength": lambda: _versus_supervised("color-strength", "augment.color_strength", COLOR_STRENGTHS, "s", "simclr"),
        "temperature": _temperature,
        "batch-epochs": lambda: _batch_epochs(epochs),
        "width": lambda: _versus_supervised("width", "model.width", WIDTHS, "x", "crop-flip"),
    }[study]()


def expand_all(studies: tuple[str, ...], proj_layers: int = 2, epochs: int = 15) -> list[Variant]:
    """The variants of every study in ``studies``, study by study."""
    return [variant for study in studies for variant in expand(study, proj_layers, epochs)]

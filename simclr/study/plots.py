"""A study's figures in the paper's style: bars (head, layer), a heat map (composition, Figure 5),
curves (colour strength, temperature, batch size x epochs, width). Error bars: the seed spread."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simclr.study.variants import COMPOSITION_OPS

Summary = dict[str, dict[str, Any]]  # variant name -> {"top1", "top1_spread", "knn_top1", "contrastive_acc", …}


def _value(row: dict[str, Any] | None, key: str = "top1") -> float:
    """A metric in percent, NaN when missing or diverged (matplotlib leaves a gap)."""
    value = None if row is None else row.get(key)
    return float("nan") if value is None else 100 * value


def _spreads(rows: list[dict[str, Any] | None], key: str = "top1") -> list[float] | None:
    """Error bars in percent (the seed spread), or None with one seed."""
    values = [None if row is None else row.get(f"{key}_spread") for row in rows]
    return None if all(v is None for v in values) else [0.0 if v is None else 100 * v for v in values]


def _bars(axes: Any, variants: Summary) -> None:
    names = list(variants)
    x = np.arange(len(names))
    for offset, key, label in ((-0.2, "top1", "linear top-1"), (0.2, "knn_top1", "kNN top-1")):
        heights = [_value(variants[n], key) for n in names]
        bars = axes.bar(x + offset, heights, 0.4, yerr=_spreads([variants[n] for n in names], key), capsize=3, label=label)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(x, names)
    axes.set_ylabel("accuracy (%)")
    axes.legend(loc="lower right")


def _heat_map(figure: Figure, axes: Any, variants: Summary) -> None:
    ops = list(COMPOSITION_OPS)
    grid = np.full((len(ops), len(ops)), np.nan)
    for i, first in enumerate(ops):
        for j, second in enumerate(ops):
            name = first if i == j else "+".join(sorted((first, second), key=ops.index))
            grid[i, j] = _value(variants.get(name))
    image = axes.imshow(grid, cmap="Greens")
    for (i, j), value in np.ndenumerate(grid):
        axes.text(j, i, "–" if np.isnan(value) else f"{value:.1f}", ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(ops)), ops, rotation=45)
    axes.set_yticks(range(len(ops)), ops)
    axes.set(xlabel="2nd transformation", ylabel="1st transformation")
    figure.colorbar(image, ax=axes, label="linear top-1 (%)")


def _curves(axes: Any, lines: dict[str, list[tuple[float, dict[str, Any]]]], key: str, xlabel: str, log_x: bool = False) -> None:
    for label, points in lines.items():
        points = sorted(points)
        axes.errorbar([x for x, _ in points], [_value(row, key) for _, row in points], yerr=_spreads([row for _, row in points], key),
                      marker="o", capsize=3, label=label)
    if log_x:
        axes.set_xscale("log", base=2)
    ticks = sorted({x for points in lines.values() for x, _ in points})
    axes.set_xticks(ticks, [f"{x:g}" for x in ticks])
    axes.minorticks_off()
    axes.set(xlabel=xlabel, ylabel=f"{'linear top-1' if key == 'top1' else key.replace('_', ' ')} (%)")
    axes.grid(alpha=0.3)
    axes.legend()


def _split(variants: Summary, pattern: str) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Group variants into lines by the regex's ``line`` group, at x = its ``x`` group."""
    lines: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for name, row in variants.items():
        match = re.fullmatch(pattern, name)
        if match:
            lines.setdefault(match["line"] or "", []).append((float(match["x"]), row))
    return lines


def plot_study(study: str, variants: Summary, path: Path) -> Path:
    """Write ``study``'s figure to ``path`` (PNG) and return it."""
    wide = study in ("temperature",)
    figure = Figure(figsize=(10 if wide else 6.4, 4.6), dpi=100)
    if study in ("head", "layer"):
        _bars(figure.subplots(), variants)
        title = "projection head: linear evaluation on h" if study == "head" else "one MLP-head run probed on each layer"
    elif study == "composition":
        _heat_map(figure, figure.subplots(), variants)
        title = "augmentations alone (diagonal) and composed (Figure 5)"
    elif study == "temperature":
        lines = {("ℓ2-normalised" if not line else "not normalised"): points for line, points in _split(variants, r"tau(?P<x>[\d.]+)(?P<line>-raw)?").items()}
        left, right = figure.subplots(1, 2)
        _curves(left, lines, "top1", "temperature τ", log_x=True)
        _curves(right, lines, "contrastive_acc", "temperature τ", log_x=True)
        title = "temperature and ℓ2 normalisation (Table 5)"
    elif study == "batch-epochs":
        lines = {f"batch {line}": points for line, points in _split(variants, r"b(?P<line>\d+)-e(?P<x>\d+)").items()}
        _curves(figure.subplots(), lines, "top1", "training epochs")
        title = "batch size and training length (Figure 9)"
    else:  # color-strength, width: SimCLR against the supervised baseline
        pattern = r"(?P<line>simclr|supervised)-[sx](?P<x>[\d.]+)"
        lines = {("SimCLR (linear eval)" if line == "simclr" else "supervised"): points for line, points in _split(variants, pattern).items()}
        xlabel = "colour distortion strength s" if study == "color-strength" else "width multiplier"
        _curves(figure.subplots(), lines, "top1", xlabel, log_x=True)
        title = "colour distortion strength (Table 1)" if study == "color-strength" else "model width (Figure 7)"
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path

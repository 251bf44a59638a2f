"""PNG curves of a run's metrics, for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

# file name -> (title, metric keys, y label)
_PLOTS = {
    "loss.png": ("NT-Xent loss", ["loss"], "loss"),
    "lr.png": ("Learning rate", ["lr"], "learning rate"),
    "accuracy.png": ("Accuracy during pretraining", ["contrastive_acc", "probe_acc", "knn_top1"], "accuracy"),
}


def plot_metrics(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write one PNG per entry of ``_PLOTS`` from ``metrics.jsonl`` rows; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (title, keys, ylabel) in _PLOTS.items():
        figure = Figure(figsize=(6, 4), dpi=100)
        axes = figure.subplots()
        for key in keys:
            points = [(row["step"], row[key]) for row in rows if row.get(key) is not None]
            if points:
                steps, values = zip(*points)
                axes.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
        axes.set(title=title, xlabel="step", ylabel=ylabel)
        axes.grid(alpha=0.3)
        if len(keys) > 1:
            axes.legend()
        figure.tight_layout()
        figure.savefig(out_dir / name)
        written.append(out_dir / name)
    return written

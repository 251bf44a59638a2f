"""Figures of what an encoder learned: a t-SNE map of h and nearest-neighbour retrieval."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits
from torch import Tensor

MIN_MAP_POINTS = 5  # t-SNE needs a few points more than its perplexity
SMALL_MAP = 2000  # up to this many points t-SNE runs on one OpenMP thread


def tsne_2d(features: Tensor, seed: int = 0) -> np.ndarray:
    """features [N, D] -> t-SNE coordinates [N, 2] of the L2-normalised rows (cosine geometry)."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    if n < MIN_MAP_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_MAP_POINTS} points, got {n}")
    x = F.normalize(features.double(), dim=1).numpy()
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # Maps this small gain little from OpenMP threads and lose several-fold on a busy CPU.
    with threadpool_limits(limits=1, user_api="openmp") if n <= SMALL_MAP else nullcontext():
        return tsne.fit_transform(x)


def plot_embedding_map(points: np.ndarray, labels: Tensor, classes: list[str], path: Path, title: str) -> Path:
    """Scatter of points [N, 2], one colour per label (grey where labels are -1); writes a PNG."""
    figure = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    y = labels.numpy()
    size = float(min(40.0, max(6.0, 4000.0 / max(len(y), 1))))  # bigger markers for fewer points
    present = sorted(int(v) for v in np.unique(y) if v >= 0)
    if (y < 0).any():
        mask = y < 0
        axes.scatter(points[mask, 0], points[mask, 1], s=size, c="0.5", alpha=0.7, label="unlabeled")
    colours = _colours(len(present))
    for colour, label in zip(colours, present):
        mask = y == label
        name = classes[label] if label < len(classes) else str(label)
        axes.scatter(points[mask, 0], points[mask, 1], s=size, color=colour, alpha=0.8, label=name)
    if 0 < len(present) <= 20:
        axes.legend(markerscale=2, fontsize=8, loc="best", title="label")
    axes.set(title=title, xticks=[], yticks=[])
    figure.tight_layout()
    figure.savefig(path)
    return path


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    return [cmap(i / max(n - 1, 1)) if n > 20 else cmap(i) for i in range(n)]


def cosine_neighbours(queries: Tensor, gallery: Tensor, k: int, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k gallery rows by cosine similarity: queries [Q, D], gallery [G, D] -> (sims [Q, k'], index [Q, k']).

    ``exclude`` [Q]: a gallery index per query to leave out (the query itself when both are
    the same set), -1 for none. k' = min(k, available)."""
    sims = F.normalize(queries.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    if exclude is not None:
        rows = torch.nonzero(exclude >= 0).flatten()
        sims[rows, exclude[rows]] = -float("inf")
    k = min(k, gallery.shape[0] - (1 if exclude is not None and bool((exclude >= 0).any()) else 0))
    values, index = sims.topk(k, dim=1)
    return values, index


def plot_retrieval(
    queries: Tensor, neighbours: Tensor, sims: Tensor, query_labels: Tensor, neighbour_labels: Tensor, classes: list[str], path: Path
) -> Path:
    """Rows: a query image then its neighbours, best first. queries [Q,3,S,S], neighbours [Q,k,3,S,S]
    in [0,1]; sims [Q,k]; labels [Q] and [Q,k] (-1 unlabeled). Titles green/red: same/other label."""
    q, k = neighbours.shape[:2]
    figure = Figure(figsize=(1.5 * (k + 1), 1.65 * q), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(q, k + 1, squeeze=False)
    for row in range(q):
        _panel(axes[row, 0], queries[row], f"query\n{_name(int(query_labels[row]), classes)}", "black")
        for col in range(k):
            label = int(neighbour_labels[row, col])
            same = label >= 0 and label == int(query_labels[row])
            colour = "black" if label < 0 else ("tab:green" if same else "tab:red")
            _panel(axes[row, col + 1], neighbours[row, col], f"{_name(label, classes)}\ncos {float(sims[row, col]):.2f}", colour)
    figure.tight_layout()
    figure.savefig(path)
    return path


def _name(label: int, classes: list[str]) -> str:
    if label < 0:
        return "unlabeled"
    return classes[label] if label < len(classes) else str(label)


def _panel(axes, image: Tensor, title: str, colour: str) -> None:
    axes.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    axes.set_title(title, fontsize=8, color=colour)
    axes.set_axis_off()

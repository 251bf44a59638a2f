"""``write_report``: a run folder's curves, augmentations, embedding map and neighbours in one page."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from simclr.augment import EvalTransform
from simclr.report.grid import save_augmentation_grid
from simclr.config import Config
from simclr.data import DataSplits
from simclr.evaluate.features import extract_features
from simclr.models import SimCLR, is_timm_arch
from simclr.report import html
from simclr.report.figures import MIN_MAP_POINTS, cosine_neighbours, plot_embedding_map, plot_retrieval, tsne_2d
from simclr.runs import build_augmentation, load_config_data, load_run_config, load_run_model, resolve_device
from simclr.train.metrics import read_metrics
from simclr.train.plots import plot_metrics

log = logging.getLogger("simclr")

_CURVES = (("loss.png", "NT-Xent loss per step"), ("lr.png", "learning rate per step"),
           ("accuracy.png", "contrastive accuracy, online linear probe and kNN monitor accuracy"))


def write_report(
    run_dir: Path,
    checkpoint: Path | None = None,
    data_name: str | None = None,
    device: str | None = None,
    max_points: int = 2000,
    queries: int = 8,
    k: int = 5,
    max_gallery: int = 5000,
) -> Path:
    """Write ``run_dir/report.html`` (self-contained) and its PNGs under ``run_dir/report/``.

    The map shows at most ``max_points`` test images (pretraining images if the data has no
    labels); ``queries`` of them are shown with their ``k`` cosine-nearest train images
    (of at most ``max_gallery``). Returns the HTML file's path.
    """
    run_dir = Path(run_dir)
    if (run_dir / "study.json").is_file():  # a `simclr study` folder: its tables and figures
        from simclr.study.report import write_study_page

        return write_study_page(run_dir)
    config = load_run_config(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    rows = read_metrics(metrics_path) if metrics_path.is_file() else []
    plot_metrics(rows, out)

    data = load_config_data(config, data_name)
    model, source = load_run_model(config, run_dir, data, checkpoint)
    model = model.to(resolve_device(device or config.train.device))
    augmentations = run_dir / "augmentations.png"
    if not augmentations.is_file():
        augmentations = out / "augmentations.png"
        images = [data.pretrain[int(i)][0] for i in np.linspace(0, len(data.pretrain) - 1, 4).round()]
        save_augmentation_grid(images, build_augmentation(config), augmentations, seed=config.train.seed)

    sections = [("Run", _summary(config, rows, source, data))]
    if (run_dir / "results.md").is_file():
        sections.append(("Evaluation", html.markdown((run_dir / "results.md").read_text())))
    curves = "".join(html.image(out / name, caption, 540) for name, caption in _CURVES)
    if not rows:
        curves = '<p class="note">metrics.jsonl is missing or empty: the curves below are blank.</p>' + curves
    sections.append(("Training curves", curves))
    sections.append(("Augmentations", "<p>Each row: an image, then views drawn by the run's augmentation.</p>" + html.image(augmentations, "augmented views")))
    sections += _embedding_sections(model, config, data, out, max_points, queries, k, max_gallery)
    sections.append(("Configuration", f"<details><summary>config.yaml</summary><pre>{html.esc((run_dir / 'config.yaml').read_text())}</pre></details>"))

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = html.page(f"SimCLR run report: {run_dir.resolve().name}", f"{run_dir.resolve()} · encoder {source} · written {stamp}", sections)
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _summary(config: Config, rows: list[dict[str, Any]], source: str, data: DataSplits) -> str:
    last = {key: next((r[key] for r in reversed(rows) if r.get(key) is not None), "–") for key in ("step", "epoch", "loss", "contrastive_acc", "probe_acc", "knn_top1")}
    last = {key: round(value, 4) if isinstance(value, float) else value for key, value in last.items()}
    m, t, o = config.model, config.train, config.optim
    network = m.arch if is_timm_arch(m.arch) else f"{m.arch} ×{m.width}, {'CIFAR' if m.cifar_stem else 'ImageNet'} stem"
    facts = [
        ("data", f"{data.name} ({config.data.image_size} px, {len(data.pretrain)} pretraining images, {data.num_classes} classes)"),
        ("encoder", f"{network}, head {m.head} → {m.out_dim}-d z"),
        ("training", f"batch {t.batch_size}, τ = {t.temperature}, {o.optimizer} lr {o.lr} ({o.lr_scaling} scaling), {t.epochs} epochs"),
        ("checkpoint", source),
        ("last step / epoch", f"{last['step']} / {last['epoch']}"),
        ("last loss", last["loss"]),
        ("last contrastive acc / probe acc / kNN top-1", f"{last['contrastive_acc']} / {last['probe_acc']} / {last['knn_top1']}"),
    ]
    return html.table([(name, str(value)) for name, value in facts])


def _sample(n: int, limit: int, seed: int) -> list[int]:
    """min(n, limit) indices drawn without replacement, seeded, in ascending order."""
    if n <= limit:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, limit, replace=False).tolist())


def _features(model: SimCLR, dataset: Dataset, index: list[int], config: Config, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """h [n, D] and labels [n] of ``dataset[index]``."""
    device = next(model.parameters()).device
    return extract_features(model, Subset(dataset, index), config.data.image_size, device, config.eval.batch_size, desc=f"{name} features")


def _embedding_sections(
    model: SimCLR, config: Config, data: DataSplits, out: Path, max_points: int, queries: int, k: int, max_gallery: int
) -> list[tuple[str, str]]:
    labelled = data.test is not None and data.train is not None
    name, dataset = ("test", data.test) if labelled else ("pretraining", data.pretrain)
    index = _sample(len(dataset), max_points, config.train.seed)  # type: ignore[arg-type]
    h, y = _features(model, dataset, index, config, name)  # type: ignore[arg-type]
    sections = []
    if len(index) >= MIN_MAP_POINTS:
        log.info("t-SNE of %d %s embeddings", len(index), name)
        points = tsne_2d(h, config.train.seed)
        colour = "coloured by label" if labelled else "no labels"
        plot_embedding_map(points, y, data.classes, out / "embedding_map.png", f"t-SNE of h, {len(index)} {name} images ({colour})")
        sections.append(("Embedding map", html.image(out / "embedding_map.png", f"t-SNE of L2-normalised h of {len(index)} {name} images")))
    else:
        sections.append(("Embedding map", f'<p class="note">only {len(index)} {name} images: too few for a map.</p>'))

    # Queries spread over the labels; neighbours from the train split, or the same images minus the query.
    order = np.argsort(y.numpy(), kind="stable")
    picks = order[np.unique(np.linspace(0, len(order) - 1, min(queries, len(order))).round().astype(int))]
    if labelled:
        gallery_set = data.train
        gallery_index = _sample(len(gallery_set), max_gallery, config.train.seed + 1)  # type: ignore[arg-type]
        g_h, g_y = _features(model, gallery_set, gallery_index, config, "train")  # type: ignore[arg-type]
        exclude = None
    else:
        gallery_set, gallery_index, g_h, g_y = dataset, index, h, y
        exclude = torch.as_tensor(picks, dtype=torch.long)
    if g_h.shape[0] - (exclude is not None) < 1:
        return sections + [("Nearest neighbours", '<p class="note">too few images for retrieval.</p>')]
    sims, nearest = cosine_neighbours(h[picks], g_h, k, exclude)
    to_input = EvalTransform(config.data.image_size)
    query_images = torch.stack([to_input(dataset[index[i]][0]) for i in picks])  # type: ignore[index]
    neighbour_images = torch.stack([torch.stack([to_input(gallery_set[gallery_index[j]][0]) for j in row]) for row in nearest.tolist()])  # type: ignore[index]
    plot_retrieval(query_images, neighbour_images, sims, y[picks], g_y[nearest], data.classes, out / "retrieval.png")
    source = f"{len(gallery_index)} train images" if labelled else f"the other {len(gallery_index) - 1} images"
    caption = f"each {name} query with its {nearest.shape[1]} cosine-nearest neighbours in h among {source}; green: same label, red: other"
    return sections + [("Nearest neighbours", html.image(out / "retrieval.png", caption))]

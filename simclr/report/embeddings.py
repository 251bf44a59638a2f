"""Features h of whole dataset splits, in dataset order, saved with their labels and file paths."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from simclr.data import DataSplits
from simclr.errors import SimCLRError
from simclr.evaluate.features import extract_features
from simclr.models import SimCLR

SPLITS: tuple[str, ...] = ("all", "pretrain", "train", "test")
SUFFIXES: tuple[str, ...] = (".npy", ".safetensors")


@dataclass
class Embeddings:
    """Rows in dataset order: ``features`` [N, D] float32, ``labels`` [N] int64 (-1: unlabeled),
    and for each row its split, index within that split and file path ("" for in-memory data)."""

    features: Tensor
    labels: Tensor
    splits: list[str]
    indices: list[int]
    paths: list[str]
    classes: list[str]


def chosen_splits(data: DataSplits, split: str) -> list[tuple[str, Dataset]]:
    """``all``: train then test when the data is labelled, else the pretraining images."""
    if split not in SPLITS:
        raise SimCLRError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
    labelled = data.train is not None and data.test is not None
    if split == "all":
        return [("train", data.train), ("test", data.test)] if labelled else [("pretrain", data.pretrain)]  # type: ignore[list-item]
    dataset = getattr(data, split)
    if dataset is None:
        raise SimCLRError(f"data '{data.name}' has no labelled {split} split; use --split pretrain or all")
    return [(split, dataset)]


def item_paths(dataset: Dataset) -> list[str]:
    """File path of every item of a folder dataset; "" for each item of in-memory data."""
    paths = getattr(dataset, "paths", None)
    return list(paths) if paths is not None else [""] * len(dataset)  # type: ignore[arg-type]


def embed_splits(
    model: SimCLR, data: DataSplits, split: str, image_size: int, device: torch.device, batch_size: int = 256, workers: int = 0
) -> Embeddings:
    """h of every image of the chosen split(s), concatenated in order (see ``chosen_splits``)."""
    features, labels, splits, indices, paths = [], [], [], [], []
    for name, dataset in chosen_splits(data, split):
        h, y = extract_features(model, dataset, image_size, device, batch_size, workers, desc=f"{name} features")
        features.append(h)
        labels.append(y)
        splits += [name] * len(y)
        indices += list(range(len(y)))
        paths += item_paths(dataset)
    return Embeddings(torch.cat(features).float(), torch.cat(labels).long(), splits, indices, paths, list(data.classes))


def save_embeddings(embeddings: Embeddings, out: Path, metadata: dict[str, str] | None = None) -> list[Path]:
    """Write ``out`` (.npy: features only; .safetensors: features, labels and metadata) plus
    ``<stem>.labels.npy`` (.npy only) and ``<stem>.csv`` (row, split, index, label, class, path).
    Returns the files written."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise SimCLRError(f"--output must end in {' or '.join(SUFFIXES)}, got '{out.name}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    written = [out]
    if suffix == ".npy":
        np.save(out, embeddings.features.numpy().astype(np.float32))
        np.save(stem.with_name(stem.name + ".labels.npy"), embeddings.labels.numpy())
        written.append(stem.with_name(stem.name + ".labels.npy"))
    else:
        from safetensors.torch import save_file

        header = {
            **(metadata or {}),
            "classes": json.dumps(embeddings.classes),
            "splits": json.dumps(embeddings.splits),
            "indices": json.dumps(embeddings.indices),
            "paths": json.dumps(embeddings.paths),
        }
        save_file({"features": embeddings.features.contiguous(), "labels": embeddings.labels.contiguous()}, str(out), metadata=header)
    table = stem.with_name(stem.name + ".csv")
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "split", "index", "label", "class", "path"])
        for row, (split, index, label, path) in enumerate(zip(embeddings.splits, embeddings.indices, embeddings.labels.tolist(), embeddings.paths)):
            name = embeddings.classes[label] if 0 <= label < len(embeddings.classes) else ""
            writer.writerow([row, split, index, label, name, path])
    written.append(table)
    return written

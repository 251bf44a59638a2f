"""Evaluate a run folder's encoder (or a random one of the same architecture) with the paper's protocols."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from simclr.config import Config, set_value
from simclr.data import DataSplits
from simclr.errors import SimCLRError
from simclr.evaluate.features import extract_features
from simclr.evaluate.protocols import eval_seed, finetune_row, fresh_model, knn_row, linear_row, supervised_row
from simclr.evaluate.results import ResultRow
from simclr.models import SimCLR, is_timm_arch
from simclr.runs import load_config_data, load_run_config, load_run_model, resolve_device
from simclr.validation import eval_label_fractions, eval_protocols, validate

log = logging.getLogger("simclr")
FROZEN = ("linear", "knn")


def apply_overrides(config: Config, overrides: dict[str, Any] | None) -> Config:
    """Set ``section.key`` (a bare name means ``eval.name``) from raw or typed values, then validate."""
    for key, value in (overrides or {}).items():
        set_value(config, key if "." in key else f"eval.{key}", value)
    validate(config)
    return config


def labelled_data(config: Config, data_name: str | None = None) -> DataSplits:
    """The run's data (or ``data_name``), which must have labelled train and test splits."""
    data = load_config_data(config, data_name)
    if data.train is None or data.test is None:
        raise SimCLRError(f"data '{data.name}' has no labels; evaluation needs labelled train/test splits (PATH/<class>/… or PATH/train|test/<class>/…)")
    return data


def describe(config: Config, data: DataSplits, device: torch.device) -> dict[str, Any]:
    """What every row of a results table shares: data, network and device."""
    m = config.model
    stem = "CIFAR stem" if m.cifar_stem else "ImageNet stem"
    network = m.arch if is_timm_arch(m.arch) else f"{m.arch}, width {m.width:g}, {stem}"  # a timm model keeps its own width and stem
    return {
        "data": f"{data.name} ({len(data.train)} train / {len(data.test)} test images, {data.num_classes} classes)",  # type: ignore[arg-type]
        "model": f"{network}, image {config.data.image_size} px",
        "device": str(device),
        "seed": eval_seed(config),
    }


def run_protocols(
    model: SimCLR, config: Config, data: DataSplits, device: torch.device, protocols: tuple[str, ...],
    fractions: tuple[float, ...], encoder: str = "SimCLR",
) -> list[ResultRow]:
    """Frozen features once for linear / kNN, then supervised and fine-tune rows per label fraction."""
    rows: list[ResultRow] = []

    def add(row: ResultRow) -> None:  # logged as it arrives: a long evaluation shows its progress
        log.info("%s (%s): top-1 %.4f, top-5 %.4f (%d labelled images, %.0f s)", row.method, row.encoder, row.top1, row.top5, row.train_size, row.seconds)
        rows.append(row)

    model = model.to(device)
    if set(FROZEN) & set(protocols):
        size, batch = config.data.image_size, config.eval.batch_size
        train = extract_features(model, data.train, size, device, batch, desc="train features")
        test = extract_features(model, data.test, size, device, batch, desc="test features")
        if "linear" in protocols:
            add(linear_row(model, config, data, device, train, test, encoder))
        if "knn" in protocols:
            add(knn_row(model, config, data, train, test, encoder))
    for fraction in fractions:
        if "supervised" in protocols:
            add(supervised_row(config, data, fraction, device))
        if "finetune" in protocols:
            add(finetune_row(model, config, data, fraction, device, encoder))
    return rows


def evaluate_run(
    run_dir: Path,
    protocols: tuple[str, ...] | None = FROZEN,
    data_name: str | None = None,
    random_init: bool = False,
    checkpoint: Path | None = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``protocols`` (None: ``eval.protocols``) on the run's encoder; fractions from ``eval.label_fractions``.

    Returns ``{"rows": [ResultRow], "linear": {"top1", "top5", …}, "knn": {…}, "encoder": …,
    "data": …, "summary": {…}}``; the ``linear`` / ``knn`` keys appear when those protocols ran.
    """
    started = time.perf_counter()
    config = apply_overrides(load_run_config(run_dir), overrides)
    data = labelled_data(config, data_name)
    # A random encoder is drawn from the evaluation seed, like every other choice evaluation makes.
    model, source = (fresh_model(config, data), "random init") if random_init else load_run_model(config, run_dir, data, checkpoint)
    torch_device = resolve_device(device or config.train.device)
    protocols = eval_protocols(config.eval.protocols) if protocols is None else protocols
    fractions = eval_label_fractions(config.eval.label_fractions) if {"finetune", "supervised"} & set(protocols) else ()
    rows = run_protocols(model, config, data, torch_device, protocols, fractions, "random init" if random_init else "SimCLR")
    summary = {**describe(config, data, torch_device), "encoder": source, "wall time": f"{time.perf_counter() - started:.0f} s"}
    result: dict[str, Any] = {"encoder": source, "data": data.name, "train_size": len(data.train), "test_size": len(data.test),  # type: ignore[arg-type]
                              "rows": rows, "summary": summary}
    result.update({row.protocol: row.to_dict() for row in rows if row.protocol in FROZEN})
    return result

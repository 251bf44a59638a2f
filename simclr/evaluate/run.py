"""Evaluate a run folder's encoder (or a random one of the same architecture) on labelled data."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from simclr.config import Config, config_from_dict, load_yaml
from simclr.data import DataSplits, load_data
from simclr.errors import SimCLRError
from simclr.evaluate.features import extract_features
from simclr.evaluate.knn import knn_evaluate
from simclr.evaluate.linear import linear_evaluate
from simclr.models import SimCLR
from simclr.train import checkpoint as ckpt
from simclr.train.build import build_model, check_same_model, resolve_device

log = logging.getLogger("simclr")
PROTOCOLS = ("linear", "knn")


def load_run_config(run_dir: Path) -> Config:
    """The resolved config a run saved as ``config.yaml``."""
    if not run_dir.is_dir():
        raise SimCLRError(f"run folder '{run_dir}' does not exist")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise SimCLRError(f"'{run_dir}' is not a simclr run folder (no config.yaml)")
    return config_from_dict(load_yaml(path, "run config"))


def load_run_model(
    config: Config, run_dir: Path, data: DataSplits, checkpoint: Path | None = None, random_init: bool = False
) -> tuple[SimCLR, str]:
    """The run's network with its newest good checkpoint (or ``checkpoint``), or freshly initialised."""
    torch.manual_seed(config.train.seed)
    if random_init:
        return build_model(config, data.mean, data.std), "random init"
    if checkpoint is not None:
        state, path = ckpt.load_file(checkpoint), checkpoint
    else:
        state, path = ckpt.load_latest(run_dir / "checkpoints")
    check_same_model(state["config"], config, f"checkpoint '{path}'")
    model = build_model(config, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # normalisation comes from the state
    model.load_state_dict(state["model"])
    return model, f"{path} (step {state['step']})"


def evaluate_run(
    run_dir: Path,
    protocols: tuple[str, ...] = PROTOCOLS,
    data_name: str | None = None,
    random_init: bool = False,
    checkpoint: Path | None = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Extract frozen features of the train/test splits once, then run each protocol on them.

    Returns ``{"linear": {"top1", "top5", …}, "knn": {…}, "encoder": …, "data": …}``.
    """
    config = load_run_config(run_dir)
    eval_cfg = dataclasses.replace(config.eval, **(overrides or {}))
    data = load_data(data_name or config.data.name, config.data.root, config.data.download, config.data.valid_size, config.train.seed)
    if data.train is None or data.test is None:
        raise SimCLRError(f"data '{data.name}' has no labels; evaluation needs labelled train/test splits (PATH/<class>/… or PATH/train|test/<class>/…)")
    model, source = load_run_model(config, run_dir, data, checkpoint, random_init)
    torch_device = resolve_device(device or config.train.device)
    model = model.to(torch_device)
    size, batch = config.data.image_size, eval_cfg.batch_size
    train_x, train_y = extract_features(model, data.train, size, torch_device, batch, desc="train features")
    test_x, test_y = extract_features(model, data.test, size, torch_device, batch, desc="test features")
    result: dict[str, Any] = {"encoder": source, "data": data.name, "train_size": len(train_y), "test_size": len(test_y)}
    if "linear" in protocols:
        result["linear"] = linear_evaluate(train_x, train_y, test_x, test_y, data.num_classes, eval_cfg.linear_weight_decay, eval_cfg.linear_max_iter)
    if "knn" in protocols:
        result["knn"] = knn_evaluate(train_x, train_y, test_x, test_y, data.num_classes, eval_cfg.knn_k, eval_cfg.knn_temperature)
    return result

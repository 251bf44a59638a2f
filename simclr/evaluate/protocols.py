"""The paper's evaluation protocols assembled from a config: each returns one ``ResultRow``.

- linear (B.6): frozen encoder, linear classifier on h; SGD on cached features (fast path,
  default on CPU), SGD on crop+flip views through the frozen encoder (the paper's way), or
  L-BFGS logistic regression to convergence.
- kNN: weighted cosine kNN on frozen h.
- finetune (B.5): the whole network from the pretrained encoder (optionally from the first
  projection-head layer, as SimCLR v2) on a class-balanced, seeded fraction of the labels.
- supervised: the same architecture from a fresh initialisation, same subset, same budget.

Every protocol trains for a fixed budget and reports its last epoch on the test split.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from simclr.augment import ViewTransform
from simclr.config import Config
from simclr.data import DataSplits, balanced_subset
from simclr.evaluate.classifier import (
    Standardize,
    build_classifier,
    classifier_accuracy,
    count_parameters,
    crop_flip,
    feature_neck,
    layer_features,
    train_classifier,
)
from simclr.evaluate.knn import knn_evaluate
from simclr.evaluate.linear import linear_evaluate
from simclr.evaluate.linear_sgd import linear_sgd_evaluate, standardisation
from simclr.evaluate.results import ResultRow
from simclr.models import SimCLR
from simclr.runs import build_model

Features = tuple[Tensor, Tensor]  # (h [N, D] fp32 on CPU, labels [N] int64)


def finetune_epochs(fraction: float, configured: int | None) -> int:
    """``configured``, else the paper's budget (B.5): 60 epochs for <= 1 % of the labels, 30 above."""
    if configured is not None:
        return configured
    return 60 if fraction <= 0.01 else 30


def dataset_labels(dataset: Dataset) -> list[int]:
    """Labels of every item in order; read from ``.labels`` when the dataset keeps them."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return [int(label) for label in labels]
    return [int(dataset[i][1]) for i in range(len(dataset))]  # type: ignore[arg-type]


def labelled_subset(dataset: Dataset, fraction: float, seed: int) -> Subset:
    """The class-balanced, seeded ``fraction`` of ``dataset`` (``balanced_subset``): same seed, same images."""
    return Subset(dataset, balanced_subset(dataset_labels(dataset), fraction, seed))


def eval_seed(config: Config) -> int:
    """The seed of what evaluation samples (label subsets, initialisation, order, views): ``eval.seed``, else ``train.seed``."""
    return config.train.seed if config.eval.seed is None else config.eval.seed


def fresh_model(config: Config, data: DataSplits) -> SimCLR:
    """The config's network, freshly initialised from the evaluation seed (the supervised baseline's start, a random encoder)."""
    torch.manual_seed(eval_seed(config))
    return build_model(config, data.mean, data.std)


def _views(config: Config) -> ViewTransform:
    a = config.augment
    return crop_flip(config.data.image_size, tuple(a.crop_scale), tuple(a.crop_ratio), a.flip_p)


def linear_weight_decay(config: Config) -> float:
    """``eval.linear_weight_decay``, else 0 for SGD (paper B.6) and 1e-4 for L-BFGS (keeps the optimum finite)."""
    ev = config.eval
    if ev.linear_weight_decay is not None:
        return ev.linear_weight_decay
    return 0.0 if ev.linear_solver == "sgd" else 1e-4


def on_layer(model: SimCLR, name: str, train: Features, test: Features, encoder: str) -> tuple[Features, Features, str]:
    """Cached h of both splits -> the features of layer ``name`` (``eval.features``: h, headK or z), and the
    encoder's label (``"SimCLR (z)"`` for a layer other than h)."""
    if name == "h":
        return train, test, encoder
    return ((layer_features(model, name, train[0]), train[1]), (layer_features(model, name, test[0]), test[1]), f"{encoder} ({name})")


def linear_row(model: SimCLR, config: Config, data: DataSplits, device: torch.device, train: Features, test: Features, encoder: str) -> ResultRow:
    """Linear evaluation on the frozen encoder's layer ``eval.features``; ``train`` / ``test`` are its cached h."""
    ev, seed, started = config.eval, eval_seed(config), time.perf_counter()
    train, test, encoder = on_layer(model, ev.features, train, test, encoder)
    decay = linear_weight_decay(config)
    views = ev.linear_views if ev.linear_views != "auto" else ("cached" if device.type == "cpu" else "augmented")
    details: dict = {"solver": ev.linear_solver, "weight_decay": decay, "features": ev.features}
    epochs: int | None = ev.linear_epochs
    if ev.linear_solver == "lbfgs":
        scores = linear_evaluate(*train, *test, data.num_classes, decay, ev.linear_max_iter)
        epochs, details["max_iter"] = None, ev.linear_max_iter
    elif views == "cached":
        scores = linear_sgd_evaluate(*train, *test, data.num_classes, ev.linear_epochs, ev.linear_batch_size, ev.linear_lr, decay, seed)
    else:
        torch.manual_seed(seed)
        neck: nn.Module = Standardize(*standardisation(train[0]))
        if ev.features != "h":  # the frozen head layers, then the standardisation of their output
            neck = nn.Sequential(feature_neck(model, ev.features), neck)
        network = build_classifier(model, data.num_classes, frozen=True, neck=neck, in_dim=train[0].shape[1])
        details.update(train_classifier(network, data.train, _views(config), ev.linear_epochs, ev.linear_batch_size, ev.linear_lr, decay, seed, device, config.data.workers or 0))
        scores = classifier_accuracy(network, data.test, config.data.image_size, device, ev.batch_size, config.data.workers or 0)
    if ev.linear_solver == "sgd":
        details.update(views=views, batch_size=ev.linear_batch_size, base_lr=ev.linear_lr)
    details.update({k: v for k, v in scores.items() if k not in ("top1", "top5")})
    params = count_parameters(model.encoder) + count_parameters(feature_neck(model, ev.features)) + (train[0].shape[1] + 1) * data.num_classes
    return ResultRow("linear", encoder, scores["top1"], scores["top5"], 1.0, epochs, params, len(train[1]),
                     round(time.perf_counter() - started, 1), details)


def knn_row(model: SimCLR, config: Config, data: DataSplits, train: Features, test: Features, encoder: str) -> ResultRow:
    """Weighted kNN of the test features of layer ``eval.features`` against the training ones (no training: epochs None)."""
    started, name = time.perf_counter(), config.eval.features
    train, test, encoder = on_layer(model, name, train, test, encoder)
    scores = knn_evaluate(*train, *test, data.num_classes, config.eval.knn_k, config.eval.knn_temperature)
    params = count_parameters(model.encoder) + count_parameters(feature_neck(model, name))
    return ResultRow("knn", encoder, scores["top1"], scores["top5"], 1.0, None, params, len(train[1]), round(time.perf_counter() - started, 1),
                     {"k": config.eval.knn_k, "temperature": config.eval.knn_temperature, "features": name})


def _train_end_to_end(protocol: str, start: SimCLR, encoder: str, config: Config, data: DataSplits, fraction: float,
                      device: torch.device, from_head_layer: int, base_lr: float, weight_decay: float,
                      views: ViewTransform | None = None) -> ResultRow:
    ev, seed, workers, started = config.eval, eval_seed(config), config.data.workers or 0, time.perf_counter()
    subset = labelled_subset(data.train, fraction, seed)
    epochs = finetune_epochs(fraction, ev.finetune_epochs)
    torch.manual_seed(seed)  # the new linear layer's initialisation
    network = build_classifier(start, data.num_classes, from_head_layer)
    stats = train_classifier(network, subset, views or _views(config), epochs, ev.finetune_batch_size, base_lr, weight_decay, seed, device, workers)
    scores = classifier_accuracy(network, data.test, config.data.image_size, device, ev.batch_size, workers)
    details = {"from_head_layer": from_head_layer, "batch_size": min(ev.finetune_batch_size, len(subset)),
               "base_lr": base_lr, "weight_decay": weight_decay, **stats}
    return ResultRow(protocol, encoder, scores["top1"], scores["top5"], fraction, epochs, count_parameters(network), len(subset),
                     round(time.perf_counter() - started, 1), details)


def finetune_row(model: SimCLR, config: Config, data: DataSplits, fraction: float, device: torch.device, encoder: str = "SimCLR") -> ResultRow:
    """Fine-tune a copy of ``model`` (``eval.from_head_layer`` head layers kept) on ``fraction`` of the labels."""
    ev = config.eval
    return _train_end_to_end("finetune", model, encoder, config, data, fraction, device, ev.from_head_layer, ev.finetune_lr, ev.finetune_weight_decay)


def supervised_row(config: Config, data: DataSplits, fraction: float, device: torch.device, views: ViewTransform | None = None) -> ResultRow:
    """Train the config's encoder + a linear layer from scratch on ``fraction`` of the labels, same budget.

    ``views``: the training augmentation (default crop+flip; the paper's Table 1 gives the
    supervised baseline the colour distortion too: pass the config's SimCLR view).
    """
    ev = config.eval
    return _train_end_to_end("supervised", fresh_model(config, data), "none (from scratch)", config, data, fraction, device, 0,
                             ev.supervised_lr, ev.supervised_weight_decay, views)

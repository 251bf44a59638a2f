"""Up-front checks of a resolved ``Config``: every impossible value named before any work."""

from __future__ import annotations

import dataclasses
import importlib
import math

from simclr.config import Config, parse_duration
from simclr.errors import SimCLRError
from simclr.evaluate.linear_sgd import LINEAR_SOLVERS, LINEAR_VIEWS
from simclr.evaluate.results import PROTOCOLS
from simclr.models import HEADS, check_arch
from simclr.optim import OPTIMIZERS
from simclr.optim.schedule import LR_RULES as LR_SCALINGS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


AUGMENT_PIPELINES = ("auto", "batched", "per_image")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SimCLRError(message)


def _probability(name: str, value: float | None) -> None:
    if value is not None:
        _require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")


def _fraction_range(name: str, value: tuple[float, float]) -> None:
    low, high = value
    _require(0 < low <= high <= 1, f"{name} must satisfy 0 < lo <= hi <= 1, got {tuple(value)}")


def _finite(config: Config) -> None:
    """inf / nan pass every comparison-based range check, so refuse them first."""
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        for name, value in values.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, float) and not math.isfinite(item):
                    raise SimCLRError(f"{section.name}.{name} must be a finite number, got {value}")


def eval_protocols(text: str) -> tuple[str, ...]:
    """'linear,knn' -> ('linear', 'knn'); each must be one of ``PROTOCOLS``, at least one, no repeats."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    _require(bool(names), f"eval.protocols must name at least one of {', '.join(PROTOCOLS)}, got '{text}'")
    for name in names:
        _require(name in PROTOCOLS, f"eval.protocols: unknown protocol '{name}'; choose from {', '.join(PROTOCOLS)}")
    _require(len(set(names)) == len(names), f"eval.protocols names a protocol twice: '{text}'")
    return names


def eval_label_fractions(text: str) -> tuple[float, ...]:
    """'0.01,0.1,1' -> (0.01, 0.1, 1.0); each in (0, 1], at least one, no repeats."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    _require(bool(items), f"eval.label_fractions must list fractions in (0, 1], got '{text}'")
    fractions = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise SimCLRError(f"eval.label_fractions must be numbers in (0, 1], got '{item}'") from None
        _require(0.0 < value <= 1.0, f"eval.label_fractions must be in (0, 1], got {item}")
        fractions.append(value)
    _require(len(set(fractions)) == len(fractions), f"eval.label_fractions lists a fraction twice: '{text}'")
    return tuple(fractions)


def _eval(config: Config) -> None:
    ev, model = config.eval, config.model
    eval_protocols(ev.protocols)
    eval_label_fractions(ev.label_fractions)
    _require(ev.knn_k >= 1, f"eval.knn_k must be >= 1, got {ev.knn_k}")
    _require(ev.seed is None or 0 <= ev.seed < 2**32, f"eval.seed must be in [0, 2**32), got {ev.seed}")
    _require(ev.knn_temperature > 0, f"eval.knn_temperature must be > 0, got {ev.knn_temperature}")
    _require(ev.batch_size >= 1, f"eval.batch_size must be >= 1, got {ev.batch_size}")
    _require(ev.linear_solver in LINEAR_SOLVERS, f"eval.linear_solver must be one of {', '.join(LINEAR_SOLVERS)}, got '{ev.linear_solver}'")
    _require(ev.linear_views in LINEAR_VIEWS, f"eval.linear_views must be one of {', '.join(LINEAR_VIEWS)}, got '{ev.linear_views}'")
    for name in ("linear_epochs", "linear_batch_size", "linear_max_iter", "finetune_batch_size"):
        _require(getattr(ev, name) >= 1, f"eval.{name} must be >= 1, got {getattr(ev, name)}")
    _require(ev.finetune_epochs is None or ev.finetune_epochs >= 1, f"eval.finetune_epochs must be >= 1, got {ev.finetune_epochs}")
    for name in ("linear_lr", "finetune_lr", "supervised_lr"):
        _require(getattr(ev, name) > 0, f"eval.{name} must be > 0, got {getattr(ev, name)}")
    for name in ("linear_weight_decay", "finetune_weight_decay", "supervised_weight_decay"):
        value = getattr(ev, name)
        _require(value is None or value >= 0, f"eval.{name} must be >= 0, got {value}")
    # SimCLR v2 fine-tunes from a hidden layer of the MLP head; a linear head or none has no such layer.
    deepest = model.proj_layers - 1 if model.head == "mlp" else 0
    _require(0 <= ev.from_head_layer <= deepest, f"eval.from_head_layer must be in [0, {deepest}] for model.head={model.head} "
             f"with model.proj_layers={model.proj_layers}, got {ev.from_head_layer}")
    layers = ("h", *(f"head{k}" for k in range(1, deepest + 1)), "z")  # what linear evaluation and kNN can read
    _require(ev.features in layers, f"eval.features must be one of {', '.join(layers)} for model.head={model.head} "
             f"with model.proj_layers={model.proj_layers}, got '{ev.features}'")


def validate(config: Config) -> None:
    """Raise ``SimCLRError`` naming the first invalid option and its valid range."""
    _finite(config)
    data, aug, model, optim, train = config.data, config.augment, config.model, config.optim, config.train
    _require(0.0 < data.valid_size < 1.0, f"data.valid_size must be in (0, 1), got {data.valid_size}")
    _require(data.image_size is None or data.image_size >= 8, f"data.image_size must be >= 8, got {data.image_size}")
    _require(data.workers is None or data.workers >= 0, f"data.workers must be >= 0, got {data.workers}")
    _require(data.decode in ("cpu", "device"), f"data.decode must be cpu or device, got '{data.decode}'")

    if aug.crop_scale is not None:
        _fraction_range("augment.crop_scale", aug.crop_scale)
    _require(0 < aug.crop_ratio[0] <= aug.crop_ratio[1], f"augment.crop_ratio must satisfy 0 < lo <= hi, got {tuple(aug.crop_ratio)}")
    for name in ("flip_p", "color_p", "gray_p", "blur_p", "solarize_p"):
        _probability(f"augment.{name}", getattr(aug, name))
    _require(0.0 <= aug.color_strength <= 2.5, f"augment.color_strength must be in [0, 2.5], got {aug.color_strength}")
    _require(0 < aug.blur_sigma[0] <= aug.blur_sigma[1], f"augment.blur_sigma must satisfy 0 < lo <= hi, got {tuple(aug.blur_sigma)}")
    _require(aug.pipeline in AUGMENT_PIPELINES, f"augment.pipeline must be one of {', '.join(AUGMENT_PIPELINES)}, got '{aug.pipeline}'")

    if model.arch is not None:  # None: the recipe's
        check_arch(model.arch)  # a registered ResNet, or timm/NAME with timm installed and the name known
    _require(model.width is None or model.width > 0, f"model.width must be > 0, got {model.width}")
    _require(model.head in HEADS, f"unknown projection head '{model.head}'; choose one of {', '.join(HEADS)}")
    _require(model.proj_layers >= 1, f"model.proj_layers must be >= 1, got {model.proj_layers}")
    _require(model.out_dim >= 1, f"model.out_dim must be >= 1, got {model.out_dim}")
    _require(model.hidden_dim is None or model.hidden_dim >= 1, f"model.hidden_dim must be >= 1, got {model.hidden_dim}")

    _require(optim.optimizer in OPTIMIZERS, f"unknown optimizer '{optim.optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
    _require(optim.lr is None or optim.lr > 0, f"optim.lr must be > 0, got {optim.lr}")
    _require(optim.lr_scaling in (*LR_SCALINGS, "auto"), f"optim.lr_scaling must be one of {', '.join(LR_SCALINGS)}, got '{optim.lr_scaling}'")
    _require(optim.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {optim.weight_decay}")
    _require(0 <= optim.momentum < 1, f"optim.momentum must be in [0, 1), got {optim.momentum}")
    _require(optim.warmup_epochs is None or optim.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {optim.warmup_epochs}")
    _require(optim.grad_clip is None or optim.grad_clip > 0, f"optim.grad_clip must be > 0, got {optim.grad_clip}")

    _require(train.epochs is None or train.epochs >= 1, f"train.epochs must be >= 1, got {train.epochs}")
    _require(train.total_steps is None or train.total_steps >= 1, f"train.total_steps must be >= 1, got {train.total_steps}")
    if train.time_budget is not None:
        parse_duration(train.time_budget)
    _require(0 <= train.seed < 2**32, f"train.seed must be in [0, 2**32), got {train.seed}")
    _require(train.max_steps is None or train.max_steps >= 1, f"train.max_steps must be >= 1, got {train.max_steps}")
    _require(train.batch_size is None or train.batch_size >= 2, f"train.batch_size must be >= 2 (a positive pair needs negatives), got {train.batch_size}")
    _require(train.temperature is None or train.temperature > 0, f"train.temperature must be > 0, got {train.temperature}")
    _require(train.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, got '{train.precision}'")
    _require(train.checkpoint_every >= 1, f"train.checkpoint_every must be >= 1, got {train.checkpoint_every}")
    _require(train.keep_checkpoints >= 1, f"train.keep_checkpoints must be >= 1, got {train.keep_checkpoints}")
    _require(train.log_every >= 1, f"train.log_every must be >= 1, got {train.log_every}")
    _require(train.knn_every >= 0, f"train.knn_every must be >= 0, got {train.knn_every}")
    _require(train.loss_chunk_rows is None or train.loss_chunk_rows >= 1, f"train.loss_chunk_rows must be >= 1, got {train.loss_chunk_rows}")
    device = train.device
    _require(device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit()),
             f"train.device must be auto, cpu, cuda, cuda:N or mps, got '{device}'")
    _require(not (train.precision == "fp16" and device == "cpu"), "train.precision fp16 is not supported with train.device cpu; use bf16 or fp32")
    _require(bool(train.output.strip()), "train.output must name a run folder, got ''")

    _eval(config)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)  # imported for real by the run anyway
    except ImportError:
        return False
    return True


def validate_for_training(config: Config) -> None:
    """``validate``, plus what only a pretraining run needs (evaluating its run folder later does not)."""
    validate(config)
    project = config.train.wandb_project
    _require(project is None or _importable("wandb"),
             f"train.wandb_project is '{project}' but the wandb package is not installed (pip install wandb)")

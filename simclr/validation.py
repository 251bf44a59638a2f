"""Up-front checks of a resolved ``Config``: every impossible value named before any work."""

from __future__ import annotations

import dataclasses
import math

from simclr.config import Config
from simclr.errors import SimCLRError
from simclr.models import ARCHITECTURES, HEADS
from simclr.optim import OPTIMIZERS
from simclr.optim.schedule import LR_RULES as LR_SCALINGS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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


def validate(config: Config) -> None:
    """Raise ``SimCLRError`` naming the first invalid option and its valid range."""
    _finite(config)
    data, aug, model, optim, train, ev = config.data, config.augment, config.model, config.optim, config.train, config.eval
    _require(0.0 < data.valid_size < 1.0, f"data.valid_size must be in (0, 1), got {data.valid_size}")
    _require(data.image_size is None or data.image_size >= 8, f"data.image_size must be >= 8, got {data.image_size}")
    _require(data.workers is None or data.workers >= 0, f"data.workers must be >= 0, got {data.workers}")

    _fraction_range("augment.crop_scale", aug.crop_scale)
    _require(0 < aug.crop_ratio[0] <= aug.crop_ratio[1], f"augment.crop_ratio must satisfy 0 < lo <= hi, got {tuple(aug.crop_ratio)}")
    for name in ("flip_p", "color_p", "gray_p", "blur_p", "solarize_p"):
        _probability(f"augment.{name}", getattr(aug, name))
    _require(0.0 <= aug.color_strength <= 2.5, f"augment.color_strength must be in [0, 2.5], got {aug.color_strength}")
    _require(0 < aug.blur_sigma[0] <= aug.blur_sigma[1], f"augment.blur_sigma must satisfy 0 < lo <= hi, got {tuple(aug.blur_sigma)}")

    _require(model.arch in ARCHITECTURES, f"unknown architecture '{model.arch}'; choose one of {', '.join(ARCHITECTURES)}")
    _require(model.width > 0, f"model.width must be > 0, got {model.width}")
    _require(model.head in HEADS, f"unknown projection head '{model.head}'; choose one of {', '.join(HEADS)}")
    _require(model.proj_layers >= 1, f"model.proj_layers must be >= 1, got {model.proj_layers}")
    _require(model.out_dim >= 1, f"model.out_dim must be >= 1, got {model.out_dim}")
    _require(model.hidden_dim is None or model.hidden_dim >= 1, f"model.hidden_dim must be >= 1, got {model.hidden_dim}")

    _require(optim.optimizer in OPTIMIZERS, f"unknown optimizer '{optim.optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
    _require(optim.lr is None or optim.lr > 0, f"optim.lr must be > 0, got {optim.lr}")
    _require(optim.lr_scaling in LR_SCALINGS, f"optim.lr_scaling must be one of {', '.join(LR_SCALINGS)}, got '{optim.lr_scaling}'")
    _require(optim.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {optim.weight_decay}")
    _require(0 <= optim.momentum < 1, f"optim.momentum must be in [0, 1), got {optim.momentum}")
    _require(optim.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {optim.warmup_epochs}")
    _require(optim.grad_clip is None or optim.grad_clip > 0, f"optim.grad_clip must be > 0, got {optim.grad_clip}")

    _require(train.epochs >= 1, f"train.epochs must be >= 1, got {train.epochs}")
    _require(optim.warmup_epochs <= train.epochs, f"optim.warmup_epochs must be <= train.epochs ({train.epochs}), got {optim.warmup_epochs}")
    _require(0 <= train.seed < 2**32, f"train.seed must be in [0, 2**32), got {train.seed}")
    _require(train.max_steps is None or train.max_steps >= 1, f"train.max_steps must be >= 1, got {train.max_steps}")
    _require(train.batch_size >= 2, f"train.batch_size must be >= 2 (a positive pair needs negatives), got {train.batch_size}")
    _require(train.temperature > 0, f"train.temperature must be > 0, got {train.temperature}")
    _require(train.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, got '{train.precision}'")
    _require(train.checkpoint_every >= 1, f"train.checkpoint_every must be >= 1, got {train.checkpoint_every}")
    _require(train.keep_checkpoints >= 1, f"train.keep_checkpoints must be >= 1, got {train.keep_checkpoints}")
    _require(train.log_every >= 1, f"train.log_every must be >= 1, got {train.log_every}")
    _require(train.knn_every >= 0, f"train.knn_every must be >= 0, got {train.knn_every}")
    _require(train.probe_lr > 0, f"train.probe_lr must be > 0, got {train.probe_lr}")
    device = train.device
    _require(device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:"), f"train.device must be auto, cpu, cuda, cuda:N or mps, got '{device}'")

    _require(ev.knn_k >= 1, f"eval.knn_k must be >= 1, got {ev.knn_k}")
    _require(ev.knn_temperature > 0, f"eval.knn_temperature must be > 0, got {ev.knn_temperature}")
    _require(ev.batch_size >= 1, f"eval.batch_size must be >= 1, got {ev.batch_size}")
    _require(ev.linear_weight_decay >= 0, f"eval.linear_weight_decay must be >= 0, got {ev.linear_weight_decay}")
    _require(ev.linear_max_iter >= 1, f"eval.linear_max_iter must be >= 1, got {ev.linear_max_iter}")

"""Optimizers (LARS, SGD, Adam, AdamW) and learning-rate schedules for SimCLR."""

from simclr.optim.build import OPTIMIZERS, build_optimizer, parameter_groups
from simclr.optim.lars import LARS
from simclr.optim.schedule import default_base_lr, scaled_lr, set_lr, warmup_cosine_lr

__all__ = [
    "LARS",
    "OPTIMIZERS",
    "build_optimizer",
    "default_base_lr",
    "parameter_groups",
    "scaled_lr",
    "set_lr",
    "warmup_cosine_lr",
]

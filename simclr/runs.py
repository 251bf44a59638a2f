"""Config -> run: resolve a ``Config``, build its data, model and augmentation, load a run folder.

The one place that turns configs and run folders into objects, for training, evaluation,
reports, export and benchmarks alike (so ``train`` and ``evaluate`` need not import each other).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import torch

from simclr import checkpoint as ckpt
from simclr import recipe
from simclr.augment import TwoViewTransform, ViewTransform
from simclr.config import Config, config_from_dict, load_yaml
from simclr.data import DataSplits, load_data
from simclr.errors import SimCLRError
from simclr.models import SimCLR, build_simclr, use_cifar_stem
from simclr.optim import default_base_lr, scaled_lr
from simclr.recipe import Choice, DataFacts


def load_config_data(config: Config, name: str | None = None) -> DataSplits:
    """The config's data (or the dataset ``name`` read with the config's settings)."""
    d = config.data
    return load_data(name or d.name, d.root, d.download, d.valid_size, config.train.seed,
                     skip_bad_images=d.skip_bad_images, in_memory=d.in_memory)


def default_workers(processes_per_machine: int = 1) -> int:
    """Loader processes per training process: the cores left after one per training process, at most 8."""
    cores = os.cpu_count() or 1
    return max(0, min(8, (cores - processes_per_machine) // processes_per_machine))


def resolve_config(
    config: Config, data: DataFacts | int, processes_per_machine: int = 1, accelerator: bool = False
) -> Config:
    """A copy with every automatic value filled in (``resolve_with_recipe`` without its reasons)."""
    return resolve_with_recipe(config, data, processes_per_machine, accelerator)[0]


def resolve_with_recipe(
    config: Config, data: DataFacts | int, processes_per_machine: int = 1, accelerator: bool = False
) -> tuple[Config, list[Choice]]:
    """A copy with every automatic value filled in, so the saved config says what actually ran, and the recipe's choices.

    ``data``: the pretraining data's ``DataFacts``, or only its native image side. The
    schedule's length stays open under ``train.time_budget`` (``simclr.train.budget`` sets it).
    """
    facts = data if isinstance(data, DataFacts) else DataFacts(None, data)
    resolved = copy.deepcopy(config)
    if resolved.data.image_size is None:
        resolved.data.image_size = facts.image_size
    facts = dataclasses.replace(facts, image_size=resolved.data.image_size)
    choices = recipe.choose(resolved, facts, accelerator)
    recipe.apply_choices(resolved, choices)
    if resolved.data.workers is None:
        resolved.data.workers = default_workers(processes_per_machine)
    size = resolved.data.image_size
    resolved.model.cifar_stem = use_cifar_stem(size, resolved.model.cifar_stem)
    if resolved.augment.blur_p is None:
        resolved.augment.blur_p = 0.5 if size > 32 else 0.0
    if resolved.optim.lr is None:
        resolved.optim.lr = default_base_lr(resolved.optim.optimizer, resolved.optim.lr_scaling)
    if resolved.train.epochs is not None and resolved.train.time_budget is None:
        warmup = recipe.warmup_choice(resolved, resolved.train.epochs)
        if warmup:
            recipe.apply_choices(resolved, [warmup])
            choices.append(warmup)
    return resolved, choices


def peak_lr(config: Config) -> float:
    """The schedule's peak LR: the base LR scaled by the batch size as ``optim.lr_scaling`` says."""
    return scaled_lr(config.optim.lr, config.train.batch_size, config.optim.lr_scaling)


def build_model(config: Config, mean: tuple[float, ...], std: tuple[float, ...]) -> SimCLR:
    """The SimCLR network of a resolved config."""
    m = config.model
    stem = use_cifar_stem(config.data.image_size or 224, m.cifar_stem)
    return build_simclr(m.arch, m.width, stem, m.head, m.proj_layers, m.hidden_dim, m.out_dim, mean, std, image_size=config.data.image_size)


def build_augmentation(config: Config) -> TwoViewTransform:
    """The paper's two-view augmentation with the config's parameters."""
    a = config.augment
    view = ViewTransform(
        size=config.data.image_size or 224,
        crop=a.crop,
        crop_scale=tuple(a.crop_scale),
        crop_ratio=tuple(a.crop_ratio),
        flip_p=a.flip_p,
        color_strength=a.color_strength,
        color_p=a.color_p,
        gray_p=a.gray_p,
        blur_p=a.blur_p,
        blur_sigma=tuple(a.blur_sigma),
        solarize_p=a.solarize_p,
    )
    return TwoViewTransform(view)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not (name in ("cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit())):
        raise SimCLRError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SimCLRError(f"train.device '{name}' requested but CUDA is not available on this machine")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise SimCLRError(f"train.device '{name}' requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SimCLRError("train.device 'mps' requested but MPS is not available on this machine")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for fp32. ``auto``: bf16 where supported on CUDA, else fp16; fp32 elsewhere."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        # Native bf16 needs compute capability 8 (Ampere); older GPUs would emulate it slowly.
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    if precision == "fp16" and device.type == "cpu":
        raise SimCLRError("train.precision fp16 is not supported on the CPU; use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def check_same_model(saved: dict, current: Config, source: str) -> None:
    """Refuse a checkpoint whose network differs from the one configured, naming the differences."""
    differences = [
        f"model.{key}: {saved['model'].get(key)!r} in checkpoint vs {value!r} now"
        for key, value in dataclasses.asdict(current.model).items()
        if saved["model"].get(key) != (list(value) if isinstance(value, tuple) else value)
    ]
    if saved["data"].get("image_size") != current.data.image_size:
        differences.append(f"data.image_size: {saved['data'].get('image_size')} in checkpoint vs {current.data.image_size} now")
    if differences:
        raise SimCLRError(f"{source} holds a different model: " + "; ".join(differences))


# What a resumed run may not change: the optimizer's state and the data stream depend on them.
_FIXED_ON_RESUME = (
    ("data", "name"), ("train", "batch_size"), ("train", "seed"),
    ("optim", "optimizer"), ("optim", "weight_decay"), ("optim", "momentum"),
)


def check_same_training(saved: dict, current: Config, source: str) -> None:
    """Refuse a resume that changes the data stream or the optimizer, naming the differences."""
    differences = [
        f"{section}.{key}: {saved[section][key]!r} in checkpoint vs {getattr(getattr(current, section), key)!r} now"
        for section, key in _FIXED_ON_RESUME
        if saved[section][key] != getattr(getattr(current, section), key)
    ]
    if differences:
        raise SimCLRError(f"cannot resume from {source} with " + "; ".join(differences))


def load_run_config(run_dir: Path) -> Config:
    """The resolved config a run saved as ``config.yaml`` (renamed keys of older versions mapped)."""
    if not run_dir.is_dir():
        raise SimCLRError(f"run folder '{run_dir}' does not exist")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise SimCLRError(f"'{run_dir}' is not a simclr run folder (no config.yaml)")
    return config_from_dict(load_yaml(path, "run config"), f"run config '{path}'")


def load_run_model(
    config: Config, run_dir: Path, data: DataSplits | None = None, checkpoint: Path | None = None, random_init: bool = False
) -> tuple[SimCLR, str]:
    """The run's network with its newest good checkpoint (or ``checkpoint``), or freshly initialised (needs ``data``)."""
    torch.manual_seed(config.train.seed)
    if random_init:
        assert data is not None, "a random network takes its input normalisation from the data"
        return build_model(config, data.mean, data.std), "random init"
    state, path = (ckpt.load_file(checkpoint), checkpoint) if checkpoint else ckpt.load_latest(run_dir / "checkpoints")
    check_same_model(state["config"], config, f"checkpoint '{path}'")
    model = build_model(config, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # normalisation comes from the state
    model.load_state_dict(state["model"])
    return model, f"{path} (step {state['step']})"

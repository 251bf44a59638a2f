"""The one typed configuration: defaults live here, presets (YAML) and the CLI override them.

Resolution order: dataclass defaults < preset YAML < command-line options < ``--set key=value``.
``validate`` checks every value once, up front, and raises ``SimCLRError`` naming the option.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simclr.errors import SimCLRError

PRESET_DIR = Path(__file__).parent / "configs"
log = logging.getLogger("simclr")

# Saved configs outlive the code: keys of saved runs renamed since (old -> new) or removed (old -> None,
# ignored with a warning). Presets and --set still refuse unknown keys.
RENAMED: dict[str, str | None] = {"train.probe_lr": None}  # the probe joined the main optimizer


@dataclass
class DataConfig:
    name: str = "mnist5k"  # built-in name, torchvision dataset name, or a folder path
    root: str = "./data"  # where torchvision datasets live
    download: bool = False
    valid_size: float = 0.2  # test fraction when a class folder has no train/test split
    image_size: int | None = None  # None: the dataset's native size
    workers: int | None = None  # None: chosen from the CPU count
    skip_bad_images: bool = False  # folders: decode every file up front and leave out unreadable ones
    in_memory: bool | None = None  # folders: decode once and hold in memory; None: when small (simclr.data.memory)
    decode: str = "cpu"  # folders: cpu (PIL in loader workers) | device (JPEGs decoded on the training device: nvJPEG on CUDA)


@dataclass
class AugmentConfig:
    # Each op is off at probability 0 (crop: crop=false), so every cell of the paper's Figure 5 is a config.
    crop: bool = True  # False: no random crop; a view is the image's largest centred square (the whole image if square), resized
    crop_scale: tuple[float, float] | None = None  # None: the recipe's ((0.2, 1) at <= 32 px, else the paper's (0.08, 1))
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float | None = None  # None: the recipe's (0.5 unless mirrored images are foreign to the data)
    color_strength: float = 1.0  # s in the paper's colour distortion
    color_p: float = 0.8
    gray_p: float | None = None  # None: the recipe's (0.2; 0 for grayscale data)
    blur_p: float | None = None  # None: 0.5 above 32 px, off at or below (as the paper does for CIFAR)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    pipeline: str = "auto"  # auto = batched (views drawn and rendered per batch on the device; folders cropped in loader workers) | per_image


@dataclass
class ModelConfig:
    arch: str | None = None  # None: the recipe's (see simclr.recipe)
    width: float | None = None  # channel-width multiplier; None: the recipe's
    cifar_stem: bool | None = None  # None: CIFAR stem for images <= 64 px
    head: str = "mlp"  # mlp | linear | none
    proj_layers: int = 2  # 2 as in SimCLR v1, 3 as in v2
    hidden_dim: int | None = None  # None: the feature width
    out_dim: int = 128


@dataclass
class OptimConfig:
    optimizer: str = "lars"  # lars | sgd | adam | adamw
    lr: float | None = None  # base LR before scaling; None: 0.3 (linear) / 0.075 (sqrt) for LARS/SGD
    lr_scaling: str = "auto"  # linear: lr*B/256 | sqrt: lr*sqrt(B) | none | auto: the recipe's
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float | None = None  # None: 10 % of the schedule, at most 10 epochs
    grad_clip: float | None = None  # max global grad norm; None: off


@dataclass
class TrainConfig:
    output: str = "runs/simclr"
    epochs: int | None = None  # None: set by time_budget, else the recipe's
    time_budget: str | None = None  # wall time for the whole run ("90s", "5m", "2h"): sets the schedule's length
    total_steps: int | None = None  # the schedule's length in steps when a time budget set it (else epochs x steps/epoch)
    max_steps: int | None = None  # stop early after this many steps (the schedule still spans epochs)
    batch_size: int | None = None  # None: the recipe's
    temperature: float | None = None  # None: the recipe's
    loss_normalize: bool = True  # False: NT-Xent on dot products of raw z over τ, no L2 normalisation (paper, Table 5)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    checkpoint_every: int = 500  # steps
    keep_checkpoints: int = 3
    log_every: int = 10  # steps between reads of scalars from the device
    knn_every: int = 5  # epochs between kNN monitor runs; 0: off
    loss_chunk_rows: int | None = None  # build NT-Xent logits this many rows at a time (memory at huge batch)
    compile: bool = False  # torch.compile the network
    sync_bn: bool = True  # global BatchNorm statistics across processes under DDP (as the paper)
    wandb_project: str | None = None  # also log to Weights & Biases (needs the wandb package)


@dataclass
class EvalConfig:
    # What `simclr evaluate` runs: any of linear, knn, finetune, supervised (comma-separated).
    protocols: str = "linear,knn,finetune,supervised"
    label_fractions: str = "0.01,0.1,1.0"  # fine-tune / supervised: class-balanced, seeded subsets
    features: str = "h"  # the layer linear evaluation and kNN read: h | head1, head2… (the MLP head's hidden layers, after BN+ReLU) | z = g(h)
    knn_k: int = 200
    knn_temperature: float = 0.1
    batch_size: int = 256  # feature extraction and test-split inference
    # Linear evaluation (paper B.6): frozen encoder, linear classifier on standardised h.
    linear_solver: str = "sgd"  # sgd: Nesterov SGD + cosine, fixed epochs | lbfgs: logistic regression to convergence
    linear_views: str = "auto"  # sgd: cached (features of unaugmented images) | augmented (crop+flip, paper) | auto: cached on CPU
    linear_epochs: int = 90
    linear_batch_size: int = 256
    linear_lr: float = 0.1  # base LR, scaled by batch/256
    linear_weight_decay: float | None = None  # None: 0 for sgd (paper), 1e-4 for lbfgs (finite optimum)
    linear_max_iter: int = 500  # lbfgs
    # Fine-tuning (paper B.5) and the supervised baseline: same loop, same epochs and batch.
    finetune_epochs: int | None = None  # None: 60 for <= 1 % of the labels, 30 above (paper B.5)
    finetune_batch_size: int = 256  # capped at the labelled subset's size
    finetune_lr: float = 0.05  # base LR, scaled by batch/256 (paper B.5)
    finetune_weight_decay: float = 0.0  # paper B.5: no regularisation
    from_head_layer: int = 0  # 1: keep the projection head's first layer (SimCLR v2)
    supervised_lr: float = 0.1  # from scratch: the standard ResNet recipe, base LR scaled by batch/256
    supervised_weight_decay: float = 1e-4
    seed: int | None = None  # label subsets, classifier initialisation, order and views; None: train.seed


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), safe for YAML and ``torch.load(weights_only=True)``."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _sections(config: Config) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _field_types(section: Any) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(section)}


def _coerce(key: str, raw: Any, type_name: str) -> Any:
    """Convert a YAML / command-line value to the field's declared type."""
    optional = "None" in type_name
    if raw is None or (optional and isinstance(raw, str) and raw.lower() in ("none", "null", "")):
        if optional:
            return None
        raise SimCLRError(f"option {key} cannot be empty")
    base = type_name.replace(" | None", "")
    try:
        if base.startswith("tuple"):
            items = raw if isinstance(raw, (list, tuple)) else str(raw).strip("()[] ").split(",")
            values = tuple(float(item) for item in items)
            if len(values) != 2:
                raise ValueError
            return values
        if base == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "int":
            if isinstance(raw, bool) or float(raw) != int(float(raw)):
                raise ValueError
            return int(float(raw))
        if base == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError, OverflowError):
        raise SimCLRError(f"option {key} expects {base}, got '{raw}'") from None


def set_value(config: Config, key: str, raw: Any) -> None:
    """Set ``section.field`` (or a field name unique across sections) from a raw value."""
    sections = _sections(config)
    if "." in key:
        section_name, name = key.split(".", 1)
        if section_name not in sections or name not in _field_types(sections[section_name]):
            raise SimCLRError(f"unknown option '{key}'")
    else:
        owners = [s for s, obj in sections.items() if key in _field_types(obj)]
        if len(owners) != 1:
            raise SimCLRError(f"unknown option '{key}'" if not owners else f"ambiguous option '{key}'; write section.{key}")
        section_name, name = owners[0], key
    section = sections[section_name]
    setattr(section, name, _coerce(f"{section_name}.{name}", raw, _field_types(section)[name]))


def apply_mapping(config: Config, mapping: dict[str, Any], source: str) -> None:
    """Apply a nested ``{section: {field: value}}`` mapping (a preset or a saved config)."""
    if not isinstance(mapping, dict):
        raise SimCLRError(f"{source} must be a mapping of sections, got {type(mapping).__name__}")
    for section_name, values in mapping.items():
        if section_name not in _sections(config) or not isinstance(values, dict):
            raise SimCLRError(f"{source}: unknown section '{section_name}'")
        for name, raw in values.items():
            set_value(config, f"{section_name}.{name}", raw)


def available_presets() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            return yaml.safe_load(handle) or {}
    except OSError as error:
        raise SimCLRError(f"cannot read {what} '{path}': {error.strerror}") from None
    except UnicodeDecodeError:
        raise SimCLRError(f"{what} '{path}' is not a text YAML file") from None
    except yaml.YAMLError as error:
        raise SimCLRError(f"{what} '{path}' is not valid YAML: {str(error).splitlines()[0]}") from None


def load_preset(config: Config, name: str) -> None:
    """Apply a preset by name (``configs/NAME.yaml``) or by path to a YAML file."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = PRESET_DIR / f"{name}.yaml"
        if not path.exists():
            raise SimCLRError(f"unknown preset '{name}'; choose one of {', '.join(available_presets())} or give a .yaml path")
    apply_mapping(config, load_yaml(path, "preset"), f"preset '{name}'")


def upgrade_saved(mapping: dict[str, Any], source: str) -> dict[str, Any]:
    """A saved config's ``{section: {field: value}}`` with ``RENAMED`` keys moved or dropped."""
    if not isinstance(mapping, dict):
        return mapping  # apply_mapping names the problem
    upgraded = {section: dict(values) if isinstance(values, dict) else values for section, values in mapping.items()}
    for old, new in RENAMED.items():
        section, name = old.split(".")
        if isinstance(upgraded.get(section), dict) and name in upgraded[section]:
            value = upgraded[section].pop(name)
            if new is None:
                log.warning("%s: ignoring '%s', an option this version no longer has", source, old)
            else:
                upgraded.setdefault(new.split(".")[0], {}).setdefault(new.split(".")[1], value)
    return upgraded


def config_from_dict(mapping: dict[str, Any], source: str = "saved config") -> Config:
    """The config a run saved (``config.yaml`` or a checkpoint's), its renamed keys mapped."""
    config = Config()
    apply_mapping(config, upgrade_saved(mapping, source), source)
    return config


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"1h30m"``; ``SimCLRError`` otherwise."""
    spaced = str(text).strip().lower().replace(" ", "")
    parts = _DURATION.findall(spaced)
    if not spaced or "".join(number + unit for number, unit in parts) != spaced or (len(parts) > 1 and not all(u for _, u in parts)):
        raise SimCLRError(f"train.time_budget must be a duration such as 90s, 5m, 2h or 1h30m, got '{text}'")
    seconds = sum(float(number) * {"h": 3600, "m": 60, "s": 1, "": 1}[unit] for number, unit in parts)
    if seconds <= 0:
        raise SimCLRError(f"train.time_budget must be longer than 0 s, got '{text}'")
    return seconds


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

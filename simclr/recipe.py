"""The recipe: the value of every option nobody set, chosen from the data and the device.

``simclr pretrain --data DATA`` with no preset leaves most options unset (``None`` in
``Config``). ``choose`` fills each one from what it can see, and says why:

==========================  ==================================================================
option                      rule
==========================  ==================================================================
model.arch, model.width     ResNet-50 x1 on an accelerator for >= 50k images of >= 128 px (the
                            paper's ImageNet setting); ResNet-18 x1 on an accelerator otherwise;
                            ResNet-18 x0.25 on the CPU, where steps, not capacity, limit a run
train.batch_size            a power of two, at most 1/8 of the images (at least 8 steps an
                            epoch), at most 256 on the CPU and 1024 on an accelerator (128
                            vs 256 at an equal 4-minute CPU budget, one seed: Animal-MNIST
                            +1.8 linear, Fashion-MNIST -0.5: no clear case to change it)
optim.lr_scaling, optim.lr  LARS with the square-root rule (paper B.1: better than linear for
                            small batches and short runs); base 0.25 on the CPU (short runs of
                            a few hundred steps need a larger step), the paper's 0.075 elsewhere
optim.warmup_epochs         10 % of the schedule (the paper: 10 of 100 epochs), at most 10
train.temperature           0.2 on the CPU and for small images on an accelerator
                            (Table 5: lower τ wins at short schedules), 0.1 for large images
augment.crop_scale          (0.2, 1) at <= 32 px (a 8 % crop of a 28 px digit is a few
                            strokes), the paper's (0.08, 1) above
augment.flip_p              0.5, unless mirrored images lie far from the data (digits, text):
                            then 0 (see ``mirror_distance``)
augment.gray_p              0 for grayscale data (a no-op there; saturation and hue are too)
train.epochs                on the CPU: as many as fit a 10-minute ``train.time_budget``;
                            on an accelerator: enough for 20k steps, between 100 and 1000
==========================  ==================================================================

Blur (off at <= 32 px), the stem (CIFAR stem at <= 64 px) and the loader workers keep their
own rules in ``simclr.runs.resolve_config``. Every explicit option, preset or ``--set`` wins.
The constants were measured on mnist5k and on the datasets of ``benchmarks/datasets.py``
(``docs/results.md``, ``benchmarks/recipe_results.jsonl``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from simclr.config import Config

# Mirrored images whose nearest neighbour in the data is this many times farther than an
# image's own nearest neighbour are not images of the data: flipping would teach a wrong
# invariance. Measured (16 px, 256 images): mnist5k 1.9, scikit-learn digits 3.0.
MIRROR_LIMIT = 1.5
CPU_TIME_BUDGET = "10m"  # the default schedule on a CPU: what fits this wall time
GPU_STEPS = 20_000  # the default schedule on an accelerator, in steps (epochs clamped to 100..1000)
WARMUP_FRACTION = 0.1
CPU_BASE_LR, ACCELERATOR_BASE_LR = 0.25, 0.075  # LARS, square-root scaling


@dataclass(frozen=True)
class DataFacts:
    """What the recipe knows of a dataset: its size, image side, colour, and mirror statistic."""

    images: int | None  # pretraining images; None: unknown
    image_size: int
    grayscale: bool = False
    mirror_distance: float | None = None  # None: not measured (flips stay on)


@dataclass(frozen=True)
class Choice:
    """One option the recipe set, and why."""

    key: str
    value: Any
    reason: str


def _thumbnail(dataset: Dataset, index: int) -> torch.Tensor:
    """Item ``index`` squashed to 16 x 16 (a folder's JPEGs decoded at reduced scale), float [3, 16, 16]."""
    if hasattr(dataset, "load_crops"):  # files: do not decode a 12-megapixel photo in full for 256 pixels
        return dataset.load_crops(index, lambda height, width: np.array([[0, 0, height, width]]), 16)[0].float()
    return F.interpolate(dataset[index][0][None].float(), size=(16, 16), mode="area")[0]


def _sample(dataset: Dataset, count: int, seed: int) -> torch.Tensor:
    """``count`` images spread over the dataset as float [n, 3, 16, 16]."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()  # type: ignore[arg-type]
    return torch.stack([_thumbnail(dataset, index) for index in order])


def mirror_distance(images: torch.Tensor) -> float:
    """Mean distance from mirrored images to their nearest image, over the images' own nearest-neighbour distance.

    Cosine distance of mean-centred pixels; an image's mirror may match the image itself (a
    symmetric object is its own mirror). About 1 when mirrored images look like the data.
    """
    def unit(batch: torch.Tensor) -> torch.Tensor:
        flat = batch.flatten(1)
        return F.normalize(flat - flat.mean(1, keepdim=True), dim=1)

    plain, mirrored = unit(images), unit(images.flip(-1))
    similar = plain @ plain.T
    similar.fill_diagonal_(-2.0)
    own = (1 - similar.max(1).values).mean()
    flipped = (1 - (mirrored @ plain.T).max(1).values).mean()
    return float(flipped / own.clamp_min(1e-8))


def measure_data(dataset: Dataset, image_size: int, seed: int = 0, sample: int = 256) -> DataFacts:
    """The ``DataFacts`` of a pretraining dataset, from ``sample`` images (a second at most on small data)."""
    images = _sample(dataset, min(sample, len(dataset)), seed)  # type: ignore[arg-type]
    grayscale = bool((images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all())
    distance = mirror_distance(images) if len(images) >= 16 else None
    return DataFacts(len(dataset), image_size, grayscale, distance)  # type: ignore[arg-type]


def _model(facts: DataFacts, accelerator: bool) -> tuple[str, float, str]:
    if accelerator and facts.image_size >= 128 and (facts.images or 0) >= 50_000:
        return "resnet50", 1.0, "an accelerator and >= 50k images of >= 128 px: the paper's ImageNet encoder"
    if accelerator:
        return "resnet18", 1.0, "an accelerator, and small images or fewer than 50k of them"
    return "resnet18", 0.25, "a CPU: a quarter-width ResNet-18 takes more steps in the same time"


def _batch(facts: DataFacts, accelerator: bool) -> tuple[int, str]:
    cap = 1024 if accelerator else 256
    if facts.images is None:
        return cap, f"the largest this device takes ({cap})"
    limit = max(2, min(cap, facts.images // 8))
    return 2 ** int(math.log2(limit)), f"a power of two <= 1/8 of {facts.images} images (>= 8 steps an epoch), <= {cap}"


def _augment(facts: DataFacts) -> list[Choice]:
    small = facts.image_size <= 32
    choices = [Choice("augment.crop_scale", (0.2, 1.0) if small else (0.08, 1.0),
                      f"{facts.image_size} px: " + ("an 8 % crop of so few pixels keeps too little" if small else "the paper's range"))]
    if facts.mirror_distance is not None and facts.mirror_distance > MIRROR_LIMIT:
        choices.append(Choice("augment.flip_p", 0.0, f"mirrored images lie {facts.mirror_distance:.2f}x farther from the data "
                              f"than images do (> {MIRROR_LIMIT}): a mirror image is not an image of this data"))
    else:
        measured = "not measured" if facts.mirror_distance is None else f"mirror distance {facts.mirror_distance:.2f} <= {MIRROR_LIMIT}"
        choices.append(Choice("augment.flip_p", 0.5, f"{measured}: mirrored images look like the data"))
    if facts.grayscale:
        choices.append(Choice("augment.gray_p", 0.0, "grayscale data: grayscale conversion, saturation and hue change nothing"))
    else:
        choices.append(Choice("augment.gray_p", 0.2, "colour data: the paper's random grayscale"))
    return choices


def _schedule(config: Config, facts: DataFacts, accelerator: bool, batch: int) -> list[Choice]:
    choices = []
    if config.train.epochs is None and config.train.time_budget is None and config.train.total_steps is None:
        if accelerator:
            per_epoch = max(1, (facts.images or batch) // batch)
            epochs = min(1000, max(100, math.ceil(GPU_STEPS / per_epoch)))
            choices.append(Choice("train.epochs", epochs, f"about {GPU_STEPS} steps of {per_epoch} an epoch, within 100..1000 epochs"))
        else:
            choices.append(Choice("train.time_budget", CPU_TIME_BUDGET, "a CPU: as many epochs as fit this wall time "
                                  "(pass --epochs or --time-budget to choose)"))
    return choices


def choose(config: Config, facts: DataFacts, accelerator: bool) -> list[Choice]:
    """The recipe's choices for ``config``'s unset options (explicit values are kept, not listed)."""
    arch, width, why = _model(facts, accelerator)
    batch, batch_why = _batch(facts, accelerator)
    batch = config.train.batch_size or batch
    cpu_short = not accelerator
    temperature = 0.2 if cpu_short or facts.image_size <= 64 else 0.1
    timm = (config.model.arch or "").startswith("timm/")
    candidates = [
        Choice("model.arch", arch, why),
        Choice("model.width", 1.0, "a timm model: its width is its name's") if timm else Choice("model.width", width, why),
        Choice("train.batch_size", batch, batch_why),
        Choice("optim.lr_scaling", "sqrt", "LARS with lr = base x sqrt(B): the paper's rule for small batches (B.1)"),
        Choice("optim.lr", CPU_BASE_LR if cpu_short else ACCELERATOR_BASE_LR,
               "a CPU run is a few hundred steps: a larger step" if cpu_short else "the paper's square-root base (B.1)")
        if config.optim.optimizer in ("lars", "sgd") else Choice("optim.lr", None, "Adam(W): its own default base LR"),
        Choice("train.temperature", temperature, "short runs or small images: τ = 0.2" if temperature == 0.2
               else "large images: the paper's ImageNet τ = 0.1"),
        *_augment(facts),
        *_schedule(config, facts, accelerator, batch),
    ]
    return [choice for choice in candidates if _unset(config, choice.key) and choice.value is not None]


def _unset(config: Config, key: str) -> bool:
    section, name = key.split(".")
    return getattr(getattr(config, section), name) in (None, "auto")


def apply_choices(config: Config, choices: list[Choice]) -> None:
    """Set each chosen value on ``config`` (in place)."""
    for choice in choices:
        section, name = choice.key.split(".")
        setattr(getattr(config, section), name, choice.value)


def warmup_choice(config: Config, schedule_epochs: float) -> Choice | None:
    """Warm-up for a schedule of ``schedule_epochs``: 10 % of it (at most 10 epochs) when unset."""
    if config.optim.warmup_epochs is not None:
        return None
    epochs = round(min(10.0, WARMUP_FRACTION * schedule_epochs), 4)
    return Choice("optim.warmup_epochs", epochs, f"{WARMUP_FRACTION:.0%} of the {schedule_epochs:g}-epoch schedule, at most 10")


def describe(choices: list[Choice]) -> str:
    """The log block: one line per choice, ``key = value  (why)``."""
    if not choices:
        return "recipe: every option was set explicitly"
    width = max(len(choice.key) for choice in choices)
    lines = [f"  {choice.key:<{width}} = {_show(choice.value)}  ({choice.reason})" for choice in choices]
    return "recipe: options chosen from the data and the device (any explicit option wins)\n" + "\n".join(lines)


def _show(value: Any) -> str:
    return str(tuple(value)) if isinstance(value, (list, tuple)) else str(value)

"""Pretraining images/s on image folders, end to end through ``simclr.train.trainer.pretrain``.

Two measurements, each taken in one process on one machine:

- ``bench_photo_folder``: a flat folder of JPEG photos at ImageNet shapes (seeded crops of
  scikit-learn's two sample photos, resized to 500x375, 375x500 and 640x480); a 1/16-width
  ResNet-18 (ImageNet stem) on 224 px views, batch 32, one loader worker, fp32, LARS.
  simclr's pretraining, for each ``augment.pipeline``, against the standard loader (a torch
  ``DataLoader``: PIL decode, torchvision v2 transforms per image, two views) feeding the same
  network, NT-Xent and LARS.
- ``bench_demo_folder``: the demo preset on mnist5k's digits written out as PNG class
  folders read from disk (``data.in_memory=false``), against the same digits in memory
  (``data.name=mnist5k``).

Steady state is the difference of runs ``warmup`` and ``warmup + steps`` steps long, so start-up
(data scan, model, loader workers, first batches) and the final checkpoint cancel; every run
stays inside the first epoch. The compared pipelines take turns, a short and a long run each,
``repeats`` rounds, and the fastest short and long run of each count: load from other processes
falls on all of them alike and only ever adds time, and the first run of the process (first-call
kernel set-up) is a short one. Images/s count source images (two views each). On a machine
shared with other work the figures still move by tens of per cent: read ``load_average``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from simclr.benchmark.augment import torchvision_pipeline
from simclr.benchmark.pretrain import device_name
from simclr.config import Config, load_preset, set_value
from simclr.data import load_data
from simclr.errors import SimCLRError
from simclr.loss import nt_xent
from simclr.optim import build_optimizer, parameter_groups
from simclr.runs import build_augmentation, build_model, peak_lr, resolve_config
from simclr.train.trainer import pretrain

PHOTO_SIZES = ((500, 375), (375, 500), (640, 480))  # (width, height), as ImageNet's commonest shapes
_SECONDS_RESOLUTION = 0.1  # pretrain() reports seconds rounded to this


def write_photos(directory: Path, count: int, sizes: Sequence[tuple[int, int]] = PHOTO_SIZES,
                 seed: int = 0) -> list[Path]:
    """``count`` JPEGs (quality 90) in ``directory``: seeded crops of the sample photos, cycling through ``sizes``."""
    from sklearn.datasets import load_sample_images  # only this benchmark needs scikit-learn

    sources = [Image.fromarray(array) for array in load_sample_images().images]
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        source, (width, height) = sources[rng.integers(len(sources))], sizes[i % len(sizes)]
        # The largest crop of the target's aspect that fits, scaled down at random, anywhere in the photo.
        crop_w = min(source.width, source.height * width / height) * rng.uniform(0.5, 1.0)
        crop_h = crop_w * height / width
        left, top = rng.uniform(0, source.width - crop_w), rng.uniform(0, source.height - crop_h)
        photo = source.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + crop_w, top + crop_h))
        paths.append(directory / f"photo_{i:05d}.jpg")
        photo.save(paths[-1], quality=90)
    return paths


def write_digits(directory: Path, limit: int | None = None) -> int:
    """mnist5k's pretraining and test splits as PNGs in ``directory/{train,test}/<class>/``; returns the train count.

    ``limit`` keeps the first images of each split only (a smoke test's folder).
    """
    data = load_data("mnist5k")
    written = {}
    for split, images in (("train", data.pretrain), ("test", data.test)):
        n = len(images) if limit is None else min(limit, len(images))
        for i in range(n):
            folder = directory / split / data.classes[int(images.labels[i])]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images.images[i].permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")
        written[split] = n
    return written["train"]


def steady_rates(timers: dict[str, Callable[[int], float]], warmup: int, steps: int, batch_size: int,
                 repeats: int = 2) -> dict[str, float]:
    """Images/s of steps ``warmup`` to ``warmup + steps`` per pipeline; ``timers[name](n)`` times an n-step run.

    Each round runs every pipeline short then long, in turn; each rate subtracts the pipeline's
    fastest short run from its fastest long one.
    """
    short: dict[str, list[float]] = {name: [] for name in timers}
    long: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, seconds_for in timers.items():
            short[name].append(seconds_for(warmup))
            long[name].append(seconds_for(warmup + steps))
    return {name: steps * batch_size / max(min(long[name]) - min(short[name]), _SECONDS_RESOLUTION) for name in timers}


def _load_average() -> float | None:
    """The machine's 1-minute load average (runnable processes), where the system tells it."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _configure(config: Config, values: dict[str, object]) -> Config:
    for key, value in values.items():
        set_value(config, key, value)
    return config


class _Runs:
    """``pretrain`` runs of one config, each ``steps`` long in a fresh output folder under ``root``."""

    def __init__(self, config: Config, root: Path, name: str) -> None:
        self.config, self.root, self.name, self.ran_as = config, root, name, config.augment.pipeline
        self.runs = itertools.count()

    def seconds(self, steps: int) -> float:
        output = self.root / f"{self.name}-{next(self.runs)}"
        _configure(self.config, {"train.max_steps": steps, "train.output": str(output)})
        summary = pretrain(self.config)
        if summary["steps"] != steps:
            raise SimCLRError(f"pretrain ran {summary['steps']} steps, asked for {steps}")
        saved = output / "config.yaml"  # the resolved config: what "auto" became
        if saved.is_file():
            self.ran_as = (yaml.safe_load(saved.read_text()) or {}).get("augment", {}).get("pipeline", self.ran_as)
        return float(summary["seconds"])


def _fixed(device: str, workers: int, batch_size: int) -> dict[str, object]:
    """What every run of this module sets: no kNN monitor, no checkpoint but the last, one device, folders read from disk."""
    return {"train.device": device, "data.workers": workers, "train.batch_size": batch_size,
            "train.knn_every": 0, "train.checkpoint_every": 10**9, "data.in_memory": False}


class _TwoViewFiles(Dataset):
    """Two torchvision views of each decoded file, as a standard SimCLR loader makes them."""

    def __init__(self, paths: Sequence[Path], transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[index]) as file:
            image = v2.functional.pil_to_tensor(file.convert("RGB"))
        return self.transform(image), self.transform(image)


def standard_seconds(config: Config, paths: Sequence[Path], steps: int, device: torch.device) -> float:
    """Seconds of ``steps`` steps (loader start included) of the standard loader feeding ``config``'s network.

    One loader worker per ``data.workers``; each step: both views in one forward, NT-Xent,
    LARS, as ``pretrain`` does in fp32 (no online probe: the photo folder is unlabeled).
    """
    # What `pretrain` fills in for options left automatic (the recipe's lr scaling, blur, ...).
    config = resolve_config(config, config.data.image_size, accelerator=device.type != "cpu")
    t, o = config.train, config.optim
    torch.manual_seed(t.seed)
    model = build_model(config, (0.5,) * 3, (0.25,) * 3).to(device).train()
    optimizer = build_optimizer(o.optimizer, parameter_groups(model, o.weight_decay), peak_lr(config), o.weight_decay, o.momentum)
    dataset = _TwoViewFiles(paths, torchvision_pipeline(build_augmentation(config).view_a))
    loader = DataLoader(dataset, t.batch_size, shuffle=True, num_workers=config.data.workers or 0, drop_last=True,
                        generator=torch.Generator().manual_seed(t.seed), pin_memory=device.type == "cuda")
    started = time.perf_counter()
    batches = iter(loader)
    for _ in range(steps):
        view_a, view_b = next(batches)
        _, z = model(torch.cat([view_a, view_b]).to(device, non_blocking=True))
        loss = nt_xent(*z.chunk(2), t.temperature).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    loss.item()  # waits for the device
    elapsed = time.perf_counter() - started
    del batches  # stops the worker outside the timed span
    return elapsed


def bench_photo_folder(root: Path, device: str = "cpu", images: int = 384, image_size: int = 224, batch_size: int = 32,
                       workers: int = 1, steps: int = 8, warmup: int = 2, repeats: int = 2,
                       sizes: Sequence[tuple[int, int]] = PHOTO_SIZES) -> list[dict[str, object]]:
    """One row per simclr ``augment.pipeline`` (auto, per_image): its images/s, the standard loader's, their ratio.

    Writes the photos and run folders under ``root``. Needs ``images >= (warmup + steps) * batch_size``
    so that every timed step lies in the first epoch.
    """
    if images < (warmup + steps) * batch_size:
        raise SimCLRError(f"{images} images give fewer than {warmup + steps} steps of batch {batch_size} in one epoch")
    paths = write_photos(root / "photos", images, sizes)
    base = {"data.name": str(root / "photos"), "data.image_size": image_size, "model.arch": "resnet18",
            "model.width": 0.0625, "model.cifar_stem": False, "train.precision": "fp32", "optim.optimizer": "lars",
            "train.epochs": 100, **_fixed(device, workers, batch_size)}
    standard_config = _configure(Config(), base)
    runs = {pipeline: _Runs(_configure(Config(), {**base, "augment.pipeline": pipeline}), root / "runs",
                            f"photos-{pipeline}") for pipeline in ("auto", "per_image")}
    timers = {"standard": lambda n: standard_seconds(standard_config, paths, n, torch.device(device)),
              **{pipeline: run.seconds for pipeline, run in runs.items()}}
    rates = steady_rates(timers, warmup, steps, batch_size, repeats)
    rows = []
    for pipeline, run in runs.items():
        rows.append({
            "benchmark": "folder",
            "device": device_name(torch.device(device)),
            "arch": f"resnet18 x{run.config.model.width:g}",
            "image_size": image_size,
            "source_sizes": ",".join(f"{w}x{h}" for w, h in sizes),
            "images": images,
            "batch_size": batch_size,
            "precision": "fp32",
            "pipeline": pipeline,
            "ran_as": run.ran_as,
            "threads": torch.get_num_threads(),
            "workers": workers,
            "steps": steps,
            "warmup_steps": warmup,
            "repeats": repeats,
            "simclr_images_per_s": round(rates[pipeline], 1),
            "standard_images_per_s": round(rates["standard"], 1),
            "ratio": round(rates[pipeline] / rates["standard"], 2),
            "load_average": _load_average(),
            "torch": torch.__version__,
        })
    return rows


def bench_demo_folder(root: Path, device: str = "cpu", workers: int = 1, steps: int = 6, warmup: int = 2,
                      repeats: int = 2, batch_size: int | None = None, digits: int | None = None) -> dict[str, object]:
    """The demo preset's images/s on mnist5k as a PNG folder and in memory, and their ratio (folder / memory).

    ``batch_size`` (default: the preset's) and ``digits`` (images per split written, default all)
    shrink it for a smoke test.
    """
    count = write_digits(root / "digits", digits)
    runs = {}
    for where, name in (("folder", str(root / "digits")), ("memory", "mnist5k")):
        config = Config()
        load_preset(config, "demo")
        _configure(config, {"data.name": name, **_fixed(device, workers, batch_size or config.train.batch_size)})
        runs[where] = _Runs(config, root / "runs", f"demo-{where}")
    if count < (warmup + steps) * config.train.batch_size:
        raise SimCLRError(f"{count} digits give fewer than {warmup + steps} steps of batch {config.train.batch_size}")
    timers = {where: run.seconds for where, run in runs.items()}
    rates = steady_rates(timers, warmup, steps, config.train.batch_size, repeats)
    m = config.model
    return {
        "benchmark": "folder_demo",
        "device": device_name(torch.device(device)),
        "preset": "demo",
        "arch": f"{m.arch} x{m.width:g}",
        "image_size": 28,
        "images": count,
        "batch_size": config.train.batch_size,
        "threads": torch.get_num_threads(),
        "workers": workers,
        "steps": steps,
        "warmup_steps": warmup,
        "repeats": repeats,
        "folder_pipeline": runs["folder"].ran_as,
        "memory_pipeline": runs["memory"].ran_as,
        "folder_images_per_s": round(rates["folder"], 1),
        "memory_images_per_s": round(rates["memory"], 1),
        "ratio": round(rates["folder"] / rates["memory"], 2),
        "load_average": _load_average(),
        "torch": torch.__version__,
    }


def bench_folders(device: str, quick: bool = False) -> Iterator[dict[str, object]]:
    """Every row of ``simclr bench --suite folder`` (about 5 minutes on 2 CPU cores; ``quick``: tiny sizes)."""
    with tempfile.TemporaryDirectory(prefix="simclr-bench-folder-") as work:
        if quick:
            yield from bench_photo_folder(Path(work), device, images=8, image_size=32, batch_size=4, steps=1, warmup=1,
                                          repeats=1, sizes=((50, 38), (38, 50), (64, 48)))
            yield bench_demo_folder(Path(work), device, steps=1, warmup=1, repeats=1, batch_size=8, digits=16)
        else:
            yield from bench_photo_folder(Path(work), device)
            yield bench_demo_folder(Path(work), device)

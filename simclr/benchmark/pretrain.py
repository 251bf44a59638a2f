"""Pretraining throughput against the bare encoder's forward+backward on the same two-view batch.

The ratio end-to-end / bare is the pipeline's efficiency: 1.0 would mean that loading,
augmentation, the projection head, the loss, LARS and the online probe cost nothing.
Both count source images per second (each image is two views), measured in one process.
"""

from __future__ import annotations

import time

import torch

from simclr import distributed
from simclr.benchmark.results import device_name
from simclr.config import Config
from simclr.data import DataSplits, TensorImages
from simclr.runs import build_augmentation, build_model, resolve_config, resolve_precision
from simclr.train.loader import PretrainBatches, resolve_pipeline
from simclr.train.setup import build_train_state
from simclr.train.step import autocast, train_step


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def bare_encoder(encoder: torch.nn.Module, batch: int, size: int, device: torch.device, amp_dtype: torch.dtype | None,
                 steps: int, warmup: int, channels_last: bool) -> float:
    """Images/s of encoder forward+backward alone on a ready two-view batch already on the device."""
    images = torch.rand(2 * batch, 3, size, size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    for step in range(warmup + steps):
        if step == warmup:
            _synchronize(device)
            started = time.perf_counter()
        with autocast(device, amp_dtype):
            h = encoder(images)
        h.float().sum().backward()
        encoder.zero_grad(set_to_none=True)
    _synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def synthetic_data(count: int, size: int) -> DataSplits:
    """Random uint8 images with 10 labels, standing in for a decoded in-memory dataset."""
    generator = torch.Generator().manual_seed(0)
    images = TensorImages(torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator),
                          torch.randint(0, 10, (count,), generator=generator))
    return DataSplits("synthetic", images, images, None, 10, [str(c) for c in range(10)], size, (0.5,) * 3, (0.25,) * 3)


def end_to_end(config: Config, data: DataSplits, device: torch.device, amp_dtype: torch.dtype | None,
               steps: int, warmup: int) -> float:
    """Images/s of the trainer's batches (loading + augmentation) and ``train_step`` (f, g, NT-Xent, LARS, probe)."""
    t = config.train
    process = distributed.Process(0, 1, 0, 1, device)
    state = build_train_state(config, data, process, amp_dtype)
    batches = PretrainBatches(data.pretrain, build_augmentation(config), 0, t.batch_size, config.augment.pipeline,
                              config.data.workers, device)
    for step, (view_a, view_b, labels) in enumerate(batches.iterate(0, steps + warmup)):
        if step == warmup:
            _synchronize(device)
            started = time.perf_counter()
        stats = train_step(state, (view_a, view_b, labels))
    stats["loss"].item()  # the only host sync: wait for the last step
    _synchronize(device)
    return steps * t.batch_size / (time.perf_counter() - started)


def bench_config(arch: str, width: float, image_size: int, batch_size: int, pipeline: str = "auto", workers: int = 0,
                 channels_last: bool = False, compile_model: bool = False) -> Config:
    """The resolved pretraining config a benchmark row runs (defaults elsewhere, as ``simclr pretrain`` has them)."""
    config = Config()
    config.model.arch, config.model.width = arch, width
    config.data.image_size, config.data.workers = image_size, workers
    config.train.batch_size, config.train.channels_last, config.train.compile = batch_size, channels_last, compile_model
    config.augment.pipeline = pipeline
    return resolve_config(config, image_size)


def bench_pretrain(arch: str, width: float, image_size: int, batch_size: int, device: str, precision: str = "fp32",
                   pipeline: str = "auto", workers: int = 0, steps: int = 8, warmup: int = 2,
                   channels_last: bool = False, compile_model: bool = False) -> dict[str, object]:
    """One row: bare encoder and end-to-end images/s (and their ratio) for one configuration."""
    target = torch.device(device)
    config = bench_config(arch, width, image_size, batch_size, pipeline, workers, channels_last, compile_model)
    amp_dtype = resolve_precision(precision, target)
    torch.manual_seed(0)
    model = build_model(config, (0.5,) * 3, (0.25,) * 3).to(target)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    encoder = torch.compile(model.encoder) if compile_model else model.encoder
    bare = bare_encoder(encoder, batch_size, image_size, target, amp_dtype, steps, warmup, channels_last)
    del model, encoder
    if target.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(target)
    data = synthetic_data(batch_size * (steps + warmup), image_size)
    full = end_to_end(config, data, target, amp_dtype, steps, warmup)
    return {
        "benchmark": "pretrain",
        "device": device_name(target),
        "arch": arch_label(arch, width),
        "image_size": image_size,
        "batch_size": batch_size,
        "precision": precision,
        "pipeline": resolve_pipeline(pipeline),
        "threads": torch.get_num_threads(),
        "workers": workers,
        "channels_last": channels_last,
        "compile": compile_model,
        "bare_images_per_s": round(bare, 1),
        "end_to_end_images_per_s": round(full, 1),
        "ratio": round(full / bare, 3),
        "peak_memory_gib": _peak_memory_gib(target),
        "torch": torch.__version__,
    }


def arch_label(arch: str, width: float) -> str:
    """``resnet18`` or ``resnet18 x0.25``: the architecture as the result tables name it."""
    return arch if width == 1 else f"{arch} x{width}"

"""Pretraining throughput against the bare encoder's forward+backward on the same two-view batch.

The ratio end-to-end / bare is the pipeline's efficiency: 1.0 would mean that loading,
augmentation, the projection head, the loss, LARS and the online probe cost nothing.
Both figures count source images per second (each image is two views) and are measured in
one process on one machine. Prints one JSON object per measurement and rewrites
``benchmarks/RESULTS.md``.

    python benchmarks/bench_pretrain.py                 # resnet18, CIFAR stem, 32 px, batch 256, CPU
    python benchmarks/bench_pretrain.py --device cuda --arch resnet50 --image-size 224 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from simclr.config import Config
from simclr.data import DataSplits, TensorImages
from simclr.train.build import build_augmentation, build_model, resolve_config, resolve_precision
from simclr.train.loader import EpochSampler, TwoViewDataset, default_workers, make_loader
from simclr.train.trainer import build_train_state, train_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_encoder(model, batch: int, size: int, device, amp_dtype, steps: int, warmup: int) -> float:
    """Images/s of encoder forward+backward alone on a ready two-view batch already on the device."""
    images = torch.rand(2 * batch, 3, size, size, device=device)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            started = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            h = model.encoder(images)
        h.float().sum().backward()
        model.zero_grad(set_to_none=True)
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def synthetic_data(count: int, size: int) -> DataSplits:
    """Random uint8 images with 10 labels, standing in for a decoded dataset."""
    images = TensorImages(torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8), torch.randint(0, 10, (count,)))
    return DataSplits("synthetic", images, images, None, 10, [str(c) for c in range(10)], size, (0.5,) * 3, (0.25,) * 3)


def end_to_end(config: Config, data: DataSplits, device, amp_dtype, steps: int, warmup: int) -> float:
    """Images/s of the trainer's loader + augmentation + ``train_step`` (f, g, NT-Xent, LARS, probe)."""
    batch = config.train.batch_size
    state = build_train_state(config, data, device, amp_dtype)
    dataset = TwoViewDataset(data.pretrain, build_augmentation(config), seed=0)
    loader = make_loader(dataset, EpochSampler(len(dataset), batch, seed=0), config.data.workers, device.type == "cuda")
    for step, (view_a, view_b, labels, _) in enumerate(loader):
        if step == warmup:
            synchronize(device)
            started = time.perf_counter()
        stats = train_step(state, view_a, view_b, labels, 0.5, amp_dtype, None, config.train.channels_last)
    stats["loss"].item()  # the only host sync: wait for the last step
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def write_results(rows: list[dict], path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `python benchmarks/bench_pretrain.py`. Images/s count source images (two views each).",
        "",
        "| device | arch | px | batch | precision | threads | workers | bare f fwd+bwd img/s | end-to-end img/s | ratio |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['device_name']} | {r['arch']} | {r['image_size']} | {r['batch_size']} | {r['precision']} | "
            f"{r['threads']} | {r['workers']} | {r['bare_images_per_s']:.1f} | {r['end_to_end_images_per_s']:.1f} | {r['ratio']:.3f} |"
        )
    lines += ["", f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}."]
    path.write_text("\n".join(lines) + "\n")


def measure(args: argparse.Namespace, arch: str, width: float, size: int) -> dict:
    """One row: bare encoder and end-to-end images/s for one architecture and input size."""
    device = torch.device(args.device)
    config = Config()
    config.model.arch, config.model.width = arch, width
    config.data.image_size, config.train.batch_size = size, args.batch_size
    config.train.channels_last = args.channels_last
    config.data.workers = default_workers() if args.workers is None else args.workers
    config = resolve_config(config, size)
    amp_dtype = resolve_precision(args.precision, device)
    torch.manual_seed(0)
    model = build_model(config, (0.5,) * 3, (0.25,) * 3).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    bare = bare_encoder(model, args.batch_size, size, device, amp_dtype, args.steps, args.warmup)
    data = synthetic_data(args.batch_size * (args.steps + args.warmup), size)
    full = end_to_end(config, data, device, amp_dtype, args.steps, args.warmup)
    return {
        "benchmark": "pretrain_vs_bare_encoder",
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "arch": arch if width == 1 else f"{arch} x{width}",
        "image_size": size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "workers": config.data.workers,
        "bare_images_per_s": round(bare, 1),
        "end_to_end_images_per_s": round(full, 1),
        "ratio": round(full / bare, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None, help="one architecture instead of the default set")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # Default set: the reference (full ResNet-18, CIFAR stem, 32 px) and the demo's network.
    cases = [(args.arch, args.width, args.image_size)] if args.arch else [("resnet18", 1.0, 32), ("resnet18", 0.25, 28)]
    rows = []
    for arch, width, size in cases:
        rows.append(measure(args, arch, width, size))
        print(json.dumps(rows[-1]), flush=True)
    write_results(rows, args.results)


if __name__ == "__main__":
    main()

"""``simclr bench``: augmentation, loss, pretraining and image-folder throughput as JSON lines and RESULTS.md."""

from __future__ import annotations

import argparse
import sys
import json
from pathlib import Path

import torch

from simclr.errors import SimCLRError

SUITES = ("augment", "loss", "pretrain", "folder")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench", help="measure augmentation, loss, pretraining and image-folder pretraining speed",
        description="Print one JSON line per measurement and update RESULTS.md (and results.jsonl) in --results-dir. "
                    "Defaults: CPU runs resnet18 (CIFAR stem, 32 px); CUDA also runs resnet50 at 224 px in bf16. "
                    "The folder suite has fixed sizes (simclr.benchmark.folder; about 5 minutes on 2 CPU cores).",
    )
    bench.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    bench.add_argument("--workers", type=int, default=0, help="loader processes in the pretraining benchmark")
    bench.add_argument("--batch-size", type=int, default=256, help="pairs per step (augmentation and pretraining)")
    bench.add_argument("--steps", type=int, default=8, help="timed pretraining steps")
    bench.add_argument("--loss-sizes", default=None, help="comma-separated N for the loss (default 256..8192 on CUDA, 256..2048 on CPU)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    bench.add_argument("--compile", action="store_true", help="torch.compile the encoder in the pretraining benchmark")
    bench.add_argument("--results-dir", type=Path, default=Path("benchmarks"), help="where RESULTS.md and results.jsonl live")
    bench.set_defaults(handler=run_bench)


def _emit(row: dict, rows: list[dict]) -> None:
    rows.append(row)
    print(json.dumps(row), flush=True)


def run_bench(args: argparse.Namespace) -> int:
    from simclr.benchmark.augment import bench_augmentation
    from simclr.benchmark.folder import bench_folders
    from simclr.benchmark.loss import bench_loss
    from simclr.benchmark.pretrain import bench_pretrain
    from simclr.benchmark.results import record
    from simclr.runs import resolve_device

    suites = [name.strip() for name in args.suite.split(",") if name.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown or not suites:
        raise SimCLRError(f"--suite must name some of {', '.join(SUITES)}, got '{args.suite}'")
    for name in ("batch_size", "steps"):
        if getattr(args, name) < 1:
            raise SimCLRError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None:
        if args.threads < 1:
            raise SimCLRError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batch, steps = (16, 2) if args.quick else (args.batch_size, args.steps)
    rows: list[dict] = []
    if "augment" in suites:
        for size in [16] if args.quick else ([32, 224] if cuda else [32]):
            row = bench_augmentation(size, batch, str(device), args.threads, 0.5 if args.quick else 6.0)
            _emit({"benchmark": "augment", **row}, rows)
    if "loss" in suites:
        if args.loss_sizes:
            sizes = [int(value) for value in args.loss_sizes.split(",")]
        else:
            sizes = [32] if args.quick else ([256, 1024, 4096, 8192] if cuda else [256, 1024, 2048])
        for size in sizes:
            for chunk in (None, 1024 if size > 1024 else max(1, size // 2)):
                _emit(bench_loss(size, str(device), chunk_rows=chunk, repeats=2 if args.quick else 5), rows)
    if "pretrain" in suites:
        cases = [("resnet18", 0.125, 16, "fp32")] if args.quick else [("resnet18", 1.0, 32, "fp32")]
        if cuda and not args.quick:
            cases = [("resnet18", 1.0, 32, "bf16"), ("resnet50", 1.0, 224, "bf16")]
        for arch, width, size, precision in cases:
            row = bench_pretrain(arch, width, size, batch, str(device), precision, workers=args.workers, steps=steps,
                                 warmup=1 if args.quick else 2, channels_last=cuda, compile_model=args.compile)
            _emit(row, rows)
    if "folder" in suites:
        for row in bench_folders(str(device), args.quick):
            _emit(row, rows)
    path = record(rows, args.results_dir)
    print(f"results: {path}", file=sys.stderr)
    return 0

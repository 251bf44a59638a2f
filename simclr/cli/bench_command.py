"""``simclr bench``: augmentation, loss, pretraining and image-folder throughput as JSON lines and RESULTS.md."""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from simclr.errors import SimCLRError

SUITES = ("augment", "loss", "pretrain", "folder")
SWITCHES = {"auto": None, "on": (True,), "off": (False,), "both": (False, True)}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench", help="measure augmentation, loss, pretraining and image-folder pretraining speed",
        description="Print one JSON line per measurement and update RESULTS.md (and results.jsonl) in --results-dir. "
                    "Defaults: CPU runs resnet18 (CIFAR stem, 32 px); CUDA also runs resnet50 at 224 px in bf16. "
                    "The loss suite times simclr's NT-Xent against a plain torch version in the same process. "
                    "The pretrain suite also prints (to stderr) where a step's time goes: data wait, augmentation, "
                    "forward+backward, loss, optimizer, logging. "
                    "The folder suite has fixed sizes (simclr.benchmark.folder; about 5 minutes on 2 CPU cores).",
    )
    bench.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    bench.add_argument("--workers", type=int, default=0, help="loader processes in the pretraining benchmark")
    bench.add_argument("--batch-size", type=int, default=256, help="pairs per step (augmentation and pretraining)")
    bench.add_argument("--steps", type=int, default=8, help="timed pretraining steps")
    bench.add_argument("--loss-sizes", default=None,
                       help="comma-separated N for the loss (default 4096,8192,16384 on CUDA, 1024,2048 on CPU)")
    bench.add_argument("--loss-repeats", type=int, default=None, help="timed turns of each loss (default 7 on CUDA, 15 on CPU)")
    bench.add_argument("--archs", default=None, help="comma-separated subset of the pretraining cases' architectures")
    bench.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    bench.add_argument("--compile", nargs="?", const="on", default="off", choices=("off", "on", "both"),
                       help="torch.compile the network in the pretraining benchmark (both: a row each way)")
    bench.add_argument("--channels-last", default="auto", choices=tuple(SWITCHES),
                       help="channels_last memory format in the pretraining benchmark (auto: on CUDA only)")
    bench.add_argument("--results-dir", type=Path, default=Path("benchmarks"), help="where RESULTS.md and results.jsonl live")
    bench.set_defaults(handler=run_bench)


def _emit(row: dict, rows: list[dict]) -> None:
    rows.append(row)
    print(json.dumps(row), flush=True)


def _check(args: argparse.Namespace) -> list[str]:
    suites = [name.strip() for name in args.suite.split(",") if name.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown or not suites:
        raise SimCLRError(f"--suite must name some of {', '.join(SUITES)}, got '{args.suite}'")
    for name in ("batch_size", "steps", "loss_repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SimCLRError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return suites


def run_bench(args: argparse.Namespace) -> int:
    from simclr.benchmark.results import record
    from simclr.runs import resolve_device

    suites = _check(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows: list[dict] = []
    emit = functools.partial(_emit, rows=rows)
    for name, run in (("augment", _augment), ("loss", _loss), ("pretrain", _pretrain), ("folder", _folder)):
        if name in suites:
            run(args, device, emit)
    path = record(rows, args.results_dir)
    print(f"results: {path}", file=sys.stderr)
    return 0


Emit = Callable[[dict], None]


def _augment(args: argparse.Namespace, device: torch.device, emit: Emit) -> None:
    from simclr.benchmark.augment import bench_augmentation

    batch = 16 if args.quick else args.batch_size
    for size in [16] if args.quick else ([32, 224] if device.type == "cuda" else [32]):
        row = bench_augmentation(size, batch, str(device), args.threads, 0.5 if args.quick else 6.0)
        emit({"benchmark": "augment", **row})


def _loss(args: argparse.Namespace, device: torch.device, emit: Emit) -> None:
    from simclr.benchmark.loss import bench_loss

    cuda = device.type == "cuda"
    if args.loss_sizes:
        try:
            sizes = [int(value) for value in args.loss_sizes.split(",")]
        except ValueError:
            raise SimCLRError(f"--loss-sizes must be comma-separated integers, got '{args.loss_sizes}'") from None
    else:
        sizes = [32] if args.quick else ([4096, 8192, 16384] if cuda else [1024, 2048])
    repeats = args.loss_repeats or (2 if args.quick else 7 if cuda else 15)
    for size in sizes:
        for chunk in (None, 1024 if size > 1024 else max(1, size // 2)):
            emit(bench_loss(size, str(device), chunk_rows=chunk, repeats=repeats))


def _pretrain(args: argparse.Namespace, device: torch.device, emit: Emit) -> None:
    from simclr.benchmark.breakdown import bench_step_breakdown, format_breakdown
    from simclr.benchmark.pretrain import bench_pretrain

    cuda = device.type == "cuda"
    batch, steps = (16, 2) if args.quick else (args.batch_size, args.steps)
    cases = [("resnet18", 0.125, 16, "fp32")] if args.quick else [("resnet18", 1.0, 32, "fp32")]
    if cuda and not args.quick:
        cases = [("resnet18", 1.0, 32, "bf16"), ("resnet50", 1.0, 224, "bf16")]
    if args.archs:
        cases = [case for case in cases if case[0] in args.archs.split(",")]
        if not cases:
            raise SimCLRError(f"--archs '{args.archs}' names none of this device's pretraining cases")
    layouts = SWITCHES[args.channels_last] or (cuda,)
    for (arch, width, size, precision), channels_last, compiled in itertools.product(cases, layouts, SWITCHES[args.compile]):
        common = dict(workers=args.workers, steps=steps, warmup=1 if args.quick else 2,
                      channels_last=channels_last, compile_model=compiled)
        emit(bench_pretrain(arch, width, size, batch, str(device), precision, **common))
        if channels_last == layouts[-1] and not compiled:  # one breakdown per case (compiling twice more costs minutes)
            row = bench_step_breakdown(arch, width, size, batch, str(device), precision, **common)
            print(format_breakdown(row), file=sys.stderr)
            emit(row)


def _folder(args: argparse.Namespace, device: torch.device, emit: Emit) -> None:
    from simclr.benchmark.folder import bench_folders

    for row in bench_folders(str(device), args.quick):
        emit(row)

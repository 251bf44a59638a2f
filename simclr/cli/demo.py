"""``simclr demo``: the method end to end on mnist5k, ending with a comparison table."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simclr.cli.options import config_from_args, print_json_last, resume_base
from simclr.evaluate.run import evaluate_run


def format_table(results: dict[str, dict]) -> str:
    """Markdown table: rows are encoders, columns linear-probe and kNN top-1 / top-5."""
    lines = [
        "| encoder | linear top-1 | linear top-5 | kNN top-1 | kNN top-5 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        lin, knn = result["linear"], result["knn"]
        lines.append(f"| {name} | {lin['top1']:.2%} | {lin['top5']:.2%} | {knn['top1']:.2%} | {knn['top5']:.2%} |")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> int:
    from simclr.train.trainer import pretrain

    if not args.preset and not args.resume:
        args.preset = "demo"
    started = time.perf_counter()
    summary = pretrain(config_from_args(args, resume_base(args)), resume=args.resume)
    run_dir = Path(summary["run_dir"])
    results = {
        "SimCLR": evaluate_run(run_dir),
        "random init": evaluate_run(run_dir, random_init=True),
    }
    table = format_table(results)
    wall = time.perf_counter() - started
    (run_dir / "results.md").write_text(table + "\n")
    report = {
        "simclr": {"linear_top1": results["SimCLR"]["linear"]["top1"], "knn_top1": results["SimCLR"]["knn"]["top1"]},
        "random": {"linear_top1": results["random init"]["linear"]["top1"], "knn_top1": results["random init"]["knn"]["top1"]},
        "pretrain_seconds": summary["seconds"],
        "wall_seconds": round(wall, 1),
        "run_dir": str(run_dir),
    }
    (run_dir / "results.json").write_text(json.dumps({**report, "details": results}, indent=2))
    print()
    print(table)
    print(f"\nrun folder: {run_dir}  (pretraining {summary['seconds']:.0f} s, total {wall:.0f} s)")
    print(f"plots: {run_dir / 'plots'}  augmentations: {run_dir / 'augmentations.png'}")
    if getattr(args, "json", False):
        print_json_last(report)
    return 0

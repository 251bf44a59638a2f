"""``simclr demo``: the method end to end on mnist5k, ending with a comparison table.

The table compares the SimCLR encoder with the same network at initialisation under the two
frozen-encoder protocols (linear probe and kNN), in the one results format of ``simclr evaluate``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from simclr.cli.options import config_from_args, print_json_last, resume_base
from simclr.evaluate.results import format_table, write_results
from simclr.report import write_report
from simclr.evaluate.run import evaluate_run


def run_demo(args: argparse.Namespace) -> int:
    from simclr.train.trainer import pretrain

    if not args.preset and not args.resume:
        args.preset = "demo"
    started = time.perf_counter()
    summary = pretrain(config_from_args(args, resume_base(args)), resume=args.resume)
    run_dir = Path(summary["run_dir"])
    if summary["stopped_by"]:
        print(f"stopped by {summary['stopped_by']} at step {summary['steps']}, checkpoint saved; "
              f"continue with: simclr demo --output {run_dir} --resume")
        return 130 if summary["stopped_by"] == "SIGINT" else 0
    trained = evaluate_run(run_dir)
    random = evaluate_run(run_dir, random_init=True)
    rows = trained["rows"] + random["rows"]
    wall = time.perf_counter() - started
    heading = {**trained["summary"], "pretraining": f"{summary['seconds']:.0f} s", "wall time": f"{wall:.0f} s"}
    markdown, _ = write_results(run_dir, rows, heading)
    print()
    print(format_table(rows))
    print(f"\nrun folder: {run_dir}  (pretraining {summary['seconds']:.0f} s, total {wall:.0f} s)")
    print(f"table: {markdown}  plots: {run_dir / 'plots'}  augmentations: {run_dir / 'augmentations.png'}")
    print(f"report: {write_report(run_dir)}")
    if getattr(args, "json", False):
        print_json_last({
            "simclr": {"linear_top1": trained["linear"]["top1"], "knn_top1": trained["knn"]["top1"]},
            "random": {"linear_top1": random["linear"]["top1"], "knn_top1": random["knn"]["top1"]},
            "pretrain_seconds": summary["seconds"],
            "wall_seconds": round(wall, 1),
            "run_dir": str(run_dir),
        })
    return 0

"""``simclr`` command line: pretrain, linear-eval, knn and demo here; evaluate, finetune, supervised, report, embed, export and bench (and the handlers of linear-eval and knn) in the modules of COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from simclr.cli.options import (
    Parser,
    add_pretrain_options,
    config_from_args,
    resume_base,
)
from simclr.errors import SimCLRError

# Modules under simclr/cli/ exposing ``add_parsers(commands)``; each parser they add sets
# ``handler=fn(args) -> int`` with ``set_defaults``.
COMMAND_MODULES: list[str] = ["simclr.cli.inspect_commands", "simclr.cli.evaluate_commands", "simclr.cli.bench_command", "simclr.cli.study_command"]


def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by 'simclr pretrain'")
    parser.add_argument("--data", help="evaluate on other labelled data (default: the run's)")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file instead of the run's newest good one")
    parser.add_argument("--random-init", action="store_true", help="a randomly initialised encoder of the same architecture (baseline)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: the run's)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line of stdout")


def version_text() -> str:
    """'simclr-torch 0.1.0 (torch 2.x.y)': the installed distribution's name and version."""
    from importlib import metadata

    import torch

    from simclr import DISTRIBUTION, __version__

    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = __version__
    return f"{DISTRIBUTION} {version} (torch {torch.__version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="simclr", description="SimCLR: contrastive self-supervised pretraining and evaluation of image encoders.")
    parser.add_argument("--version", action="version", version=version_text(), help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    pretrain = commands.add_parser("pretrain", help="pretrain an encoder with SimCLR", description="Pretrain f and g with NT-Xent on two augmented views of each image.")
    add_pretrain_options(pretrain)

    linear = commands.add_parser("linear-eval", help="linear probe on frozen features", description="A linear classifier on frozen h (Nesterov SGD with cosine decay by default, or L-BFGS logistic regression), trained on the train split, top-1/top-5 on the test split.")
    _add_eval_options(linear)
    knn = commands.add_parser("knn", help="weighted kNN on frozen features", description="Weighted cosine kNN classification of test features against the train features.")
    _add_eval_options(knn)
    knn.add_argument("--k", type=int, help="neighbours (default 200)")
    knn.add_argument("--temperature", type=float, help="vote temperature (default 0.1)")

    demo = commands.add_parser("demo", help="pretrain on mnist5k, evaluate, print a table", description="The whole method on the built-in mnist5k in minutes on a CPU: pretrain, then linear probe and kNN of the SimCLR encoder and of a random one.")
    add_pretrain_options(demo)
    # Further commands live in their own modules: each adds its parsers and sets `handler`.
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parsers(commands)
    return parser


def _run_pretrain(args: argparse.Namespace) -> int:
    from simclr.train.trainer import pretrain

    summary = pretrain(config_from_args(args, resume_base(args)), resume=args.resume)
    if summary["stopped_by"]:
        print(f"stopped by {summary['stopped_by']} at step {summary['steps']}, checkpoint saved; "
              f"resume with: simclr pretrain --output {summary['run_dir']} --resume")
        return 130 if summary["stopped_by"] == "SIGINT" else 0
    print(f"run folder: {summary['run_dir']} ({summary['steps']} steps, {summary['images_per_second']} images/s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "handler"):
            return args.handler(args)
        if args.command == "pretrain":
            return _run_pretrain(args)
        from simclr.cli.demo import run_demo

        return run_demo(args)
    except SimCLRError as error:
        # An error raised in a loader worker arrives wrapped in its traceback; the last line is ours.
        message = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        print(f"error: {message[-1].removeprefix('simclr.errors.SimCLRError: ')}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable run folder, --output naming a file, disk full
        print(f"error: {error.strerror or error}: '{error.filename}'" if error.filename else f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

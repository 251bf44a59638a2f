"""Command-line options mapped onto config keys, with the seeds' spellings as aliases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from simclr.cli.choices import arch_help, head_help, optimizer_help, preset_help
from simclr.config import Config, load_preset, set_value
from simclr.errors import SimCLRError

# (flags, config key, help); the value is parsed by the config's own coercion so a bad
# value produces the same one-line message whichever way it was given.
PRETRAIN_OPTIONS: list[tuple[tuple[str, ...], str, str]] = [
    (("--data",), "data.name", "built-in name (mnist5k), torchvision name (cifar10, cifar100, stl10) or a folder path"),
    (("--data-root",), "data.root", "where torchvision datasets are stored"),
    (("--valid-size", "--valid_size"), "data.valid_size", "test fraction for PATH/<class>/ folders"),
    (("--image-size",), "data.image_size", "input side in pixels (default: the dataset's)"),
    (("--workers", "--num-workers", "--num_worker"), "data.workers", "data-loader processes"),
    (("--output",), "train.output", "run folder for checkpoints, metrics and plots"),
    (("--epochs",), "train.epochs", "epochs the schedule spans (default: the recipe's; see --time-budget)"),
    (("--time-budget",), "train.time_budget", "wall time for the run, e.g. 90s, 5m, 2h: the schedule is sized to end, "
     "final checkpoint written, inside it (overrides --epochs)"),
    (("--max-steps",), "train.max_steps", "stop after this many steps"),
    (("--batch-size", "--batch_size"), "train.batch_size", "global batch size N (pairs)"),
    (("--temperature",), "train.temperature", "NT-Xent temperature τ"),
    (("--precision",), "train.precision", "auto | fp32 | bf16 | fp16"),
    (("--seed",), "train.seed", "run seed (data order and augmentations)"),
    (("--device",), "train.device", "auto | cpu | cuda | cuda:N | mps"),
    (("--checkpoint-every",), "train.checkpoint_every", "steps between checkpoints"),
    (("--knn-every",), "train.knn_every", "epochs between kNN monitor runs (0: off)"),
    (("--wandb",), "train.wandb_project", "also log metrics to this Weights & Biases project (needs the wandb package)"),
    (("--lr",), "optim.lr", "base learning rate before scaling"),
    (("--lr-scaling",), "optim.lr_scaling", "linear (lr·B/256) | sqrt (lr·√B) | none"),
    (("--optimizer",), "optim.optimizer", optimizer_help()),
    (("--weight-decay",), "optim.weight_decay", "weight decay λ"),
    (("--warmup-epochs",), "optim.warmup_epochs", "linear warm-up length in epochs"),
    (("--grad-clip",), "optim.grad_clip", "max gradient norm"),
    (("--arch",), "model.arch", arch_help()),
    (("--width",), "model.width", "channel-width multiplier"),
    (("--head",), "model.head", head_help()),
    (("--proj-layers",), "model.proj_layers", "layers of the MLP head (2: SimCLR v1, 3: v2)"),
    (("--out-dim", "--out_dim"), "model.out_dim", "dimension of z"),
]


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line on one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def add_pretrain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help=preset_help())
    for flags, key, help_text in PRETRAIN_OPTIONS:
        parser.add_argument(*flags, dest=key, metavar=key.split(".")[1].upper(), help=help_text)
    parser.add_argument("--download", action="store_true", dest="data.download", default=None, help="download torchvision datasets (needs internet)")
    parser.add_argument("--channels-last", action="store_true", dest="train.channels_last", default=None, help="channels_last memory format")
    parser.add_argument("--skip-bad-images", action="store_true", dest="data.skip_bad_images", default=None,
                        help="check every image of a folder up front (one decoding pass) and leave out unreadable files instead of stopping")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. --set augment.color_strength=0.5")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its last good checkpoint")


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """defaults (or ``base``) < preset < explicit options < --set."""
    config = base or Config()
    if args.preset:
        load_preset(config, args.preset)
    for _, key, _ in PRETRAIN_OPTIONS:
        if getattr(args, key) is not None:
            set_value(config, key, getattr(args, key))
    for key in ("data.download", "train.channels_last", "data.skip_bad_images"):
        if getattr(args, key):
            set_value(config, key, True)
    for item in args.set:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise SimCLRError(f"--set expects KEY=VALUE, got '{item}'")
        set_value(config, key.strip(), value.strip())
    return config


def resume_base(args: argparse.Namespace) -> Config | None:
    """On --resume the run's saved config is the starting point; explicit options change it."""
    if not args.resume:
        return None
    from simclr.runs import load_run_config

    output = getattr(args, "train.output")
    if output is None:
        raise SimCLRError("--resume needs --output RUN naming the run folder to continue")
    return load_run_config(Path(output))


def print_json_last(result: dict) -> None:
    """Machine-readable result: one JSON object, the last line of stdout."""
    import json

    sys.stdout.flush()
    print(json.dumps(result), flush=True)

"""``simclr study``: the paper's ablations on your data; each variant an ordinary, resumable run folder."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from simclr.cli.choices import preset_help
from simclr.cli.options import print_json_last
from simclr.study.runner import DEFAULT_EPOCHS
from simclr.study.variants import STUDIES

_DESCRIPTION = (
    "Run the paper's studies on DATA and say which of its findings hold there. Each variant is an ordinary run folder "
    "DIR/<study>/<variant>/ (pretrained, then linear evaluation and kNN on its frozen layer), so a killed study continues "
    "where it stopped and never reruns a finished variant. Writes DIR/study.md, DIR/study.json and DIR/plots/*.png; "
    "'simclr report DIR' makes DIR/report.html. Studies: head (MLP / linear / no projection head, probe on h), layer "
    "(one MLP run probed on h, each head layer and z), composition (Figure 5: crop, colour, grayscale, blur, flip, "
    "solarize alone and in pairs), color-strength (s = 0.25, 0.5, 1, SimCLR and the supervised baseline), temperature "
    "(τ = 0.1, 0.5, 1, with and without ℓ2 normalisation), batch-epochs (batch 64 and 256 x E/3 and E epochs), width "
    "(x0.125, x0.25, x0.5, SimCLR and supervised).")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``simclr study``."""
    study = commands.add_parser("study", help="the paper's studies (head, layer, composition, …) on your data, with a verdict per finding",
                                description=_DESCRIPTION)
    study.add_argument("--data", required=True, help="labelled data: built-in name (mnist5k), torchvision name or a folder")
    study.add_argument("--output", required=True, type=Path, help="study folder DIR (rerun the same command to continue it)")
    study.add_argument("--studies", required=True, help=f"comma-separated: {', '.join(STUDIES)}")
    budget = study.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help=f"epochs of every pretraining run and supervised baseline (default {DEFAULT_EPOCHS}: "
                        "about 4 min a run for mnist5k on a 2-core CPU, so --studies head,layer takes about 15 min)")
    budget.add_argument("--time-budget", help="wall time of every pretraining run instead of epochs, e.g. 90s, 4m")
    study.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    study.add_argument("--seeds", type=int, default=1, help="seeds per variant, from --seed on (default 1); >1 gives each verdict its spread")
    study.add_argument("--preset", help=f"base config: {preset_help()} (default: the recipe chosen from the data)")
    study.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key of the base config, e.g. --set model.width=0.5")
    study.add_argument("--json", action="store_true", help="print {studies, findings} as one JSON object on the last line of stdout")
    study.set_defaults(handler=_run_study)


def command_line(args: argparse.Namespace) -> str:
    """The command that continues (or repeats) this study."""
    words = ["simclr", "study", "--data", args.data, "--output", str(args.output), "--studies", args.studies]
    for flag, value in (("--epochs", args.epochs), ("--time-budget", args.time_budget), ("--preset", args.preset), ("--device", args.device)):
        if value is not None:
            words += [flag, str(value)]
    if args.seed or args.seeds != 1:
        words += ["--seed", str(args.seed), "--seeds", str(args.seeds)]
    for item in args.set:
        words += ["--set", item]
    return shlex.join(words)


def _settings(args: argparse.Namespace, seeds: tuple[int, ...]) -> dict[str, Any]:
    epochs = args.epochs or DEFAULT_EPOCHS
    budget = f"{args.time_budget} per pretraining run" if args.time_budget else f"{epochs} epoch{'s' * (epochs != 1)} per run"
    return {"data": args.data, "studies": args.studies, "budget": budget, "seeds": ", ".join(map(str, seeds)), "command": command_line(args)}


def _run_study(args: argparse.Namespace) -> int:
    from simclr.study import report, runner
    from simclr.study.variants import parse_studies

    studies = parse_studies(args.studies)
    sets = [*args.set, *([f"train.device={args.device}"] if args.device else [])]
    base = runner.base_config(args.data, args.preset, sets, args.epochs, args.time_budget)
    study = runner.plan_study(args.output, base, studies, args.seed, args.seeds)
    settings, done = _settings(args, study.seeds), []

    def after_each(result: dict[str, Any]) -> None:  # tables after every variant: a long study shows its progress
        done.append(result)
        report.write_study(args.output, report.build_payload(done, settings), plots=False)

    try:
        results = runner.run_study(study, after_each)
    except runner.StudyStopped as stop:
        print(f"stopped by {stop.signal} in {stop.run_dir}, checkpoint saved; continue with: {command_line(args)}")
        return 130 if stop.signal == "SIGINT" else 0
    payload = report.build_payload(results, settings)
    paths = report.write_study(args.output, payload)
    print(report.markdown(payload))
    print(f"study: {paths['study.md']}, {paths['study.json']}, figures in {args.output / 'plots'}")
    if args.json:
        print_json_last({"studies": payload["studies"], "findings": payload["findings"], "output": str(args.output)})
    return 0

"""``simclr evaluate``, ``simclr finetune``, ``simclr supervised``, and the options and handlers of ``linear-eval`` and ``knn``.

Options name config keys (``eval.*`` mostly), so a bad value gets the config's own one-line
message and the run's saved ``config.yaml`` supplies every default an option does not set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from simclr.cli.choices import arch_help, preset_help
from simclr.cli.options import print_json_last
from simclr.errors import SimCLRError

Option = tuple[tuple[str, ...], str, str]
_PROTOCOLS: Option = (("--protocols",), "eval.protocols", "comma-separated: linear, knn, finetune, supervised (default: all)")
# Every command that trains or samples takes --seed; on a run's encoder it seeds evaluation only (the data split stays the run's).
_SEED: Option = (("--seed",), "eval.seed", "seed of label subsets, classifier initialisation, order and views (default: the run's train.seed)")
_FEATURES: Option = (("--features",), "eval.features", "the layer linear evaluation and kNN read: h (default, the encoder's output) | "
                      "head1, head2… (the projection head's hidden layer K, after its BN+ReLU) | z = g(h)")
_LABEL_FRACTIONS: Option = (("--label-fractions", "--label-fraction"), "eval.label_fractions", "comma-separated fractions of the training labels in (0, 1], e.g. 0.01,0.1,1.0")
_TRAINING: list[Option] = [
    (("--epochs",), "eval.finetune_epochs", "epochs of fine-tuning and of the supervised baseline (default: 60 at <= 1%% labels, 30 above)"),
    (("--batch-size",), "eval.finetune_batch_size", "batch size (capped at the labelled subset's size)"),
    (("--workers",), "data.workers", "data-loader processes"),
]
_FINETUNE: list[Option] = [
    (("--from-head-layer",), "eval.from_head_layer", "0: classifier on h; 1: keep the projection head's first layer (SimCLR v2)"),
    (("--lr",), "eval.finetune_lr", "fine-tuning base LR, scaled by batch/256 (default 0.05)"),
]
_LINEAR: list[Option] = [
    (("--solver",), "eval.linear_solver", "sgd (paper: Nesterov SGD, cosine, fixed epochs) | lbfgs (logistic regression to convergence)"),
    (("--linear-views",), "eval.linear_views", "sgd: cached (features of unaugmented images) | augmented (crop+flip through the frozen encoder) | auto"),
    (("--linear-epochs",), "eval.linear_epochs", "epochs of the SGD linear probe (default 90)"),
]
_SUPERVISED: list[Option] = [
    (("--data",), "data.name", "built-in name (mnist5k), torchvision name or a labelled folder"),
    (("--data-root",), "data.root", "where torchvision datasets are stored"),
    (("--valid-size",), "data.valid_size", "test fraction for PATH/<class>/ folders"),
    (("--image-size",), "data.image_size", "input side in pixels (default: the dataset's)"),
    (("--arch",), "model.arch", arch_help()),
    (("--width",), "model.width", "channel-width multiplier"),
    (("--seed",), "train.seed", "seed of the label subset, initialisation, order and augmentations"),
    (("--device",), "train.device", "auto | cpu | cuda | cuda:N | mps"),
    (("--lr",), "eval.supervised_lr", "base LR, scaled by batch/256 (default 0.1)"),
    (("--weight-decay",), "eval.supervised_weight_decay", "weight decay (default 1e-4)"),
]


def _add(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    for flags, key, help_text in options:
        parser.add_argument(*flags, dest=key, metavar=flags[0].lstrip("-").replace("-", "_").upper(), help=help_text)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. --set eval.linear_lr=0.2")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder written by 'simclr pretrain'")
    parser.add_argument("--data", help="evaluate on other labelled data (default: the run's)")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint file instead of the run's newest good one")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: the run's)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line of stdout")


def _overrides(args: argparse.Namespace, options: list[Option]) -> dict[str, Any]:
    """Explicit options, then ``--set KEY=VALUE``, as raw strings for the config to coerce."""
    values = {key: getattr(args, key) for _, key, _ in options if getattr(args, key, None) is not None}
    for item in args.set:
        if "=" not in item:
            raise SimCLRError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def add_parsers(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="run the paper's protocols and write RUN/results.md", description=(
        "Linear evaluation, kNN, fine-tuning and a supervised baseline on the same labelled subsets; "
        "writes results.md (a table) and results.json. No protocol looks at the test split to choose anything."))
    _run_options(evaluate)
    evaluate.add_argument("--output", type=Path, help="folder for results.md / results.json (default: RUN)")
    evaluate_options = [_PROTOCOLS, _LABEL_FRACTIONS, *_FINETUNE, *_TRAINING, *_LINEAR, _FEATURES, _SEED]
    _add(evaluate, evaluate_options)
    evaluate.set_defaults(handler=lambda args: _run_evaluate(args, evaluate_options))

    finetune = commands.add_parser("finetune", help="fine-tune the pretrained network on a fraction of the labels", description=(
        "The whole network from the pretrained encoder (optionally from the first projection-head layer) on a "
        "class-balanced, seeded fraction of the labels; top-1/top-5 on the test split after the last epoch."))
    _run_options(finetune)
    finetune_options = [_LABEL_FRACTIONS, *_FINETUNE, (("--weight-decay",), "eval.finetune_weight_decay", "weight decay (default 0, as the paper)"), *_TRAINING, _SEED]
    _add(finetune, finetune_options)
    finetune.set_defaults(handler=lambda args: _run_finetune(args, finetune_options))

    supervised = commands.add_parser("supervised", help="train the encoder from scratch on a fraction of the labels", description=(
        "The supervised baseline: the same architecture, freshly initialised, trained with crop+flip on a "
        "class-balanced, seeded fraction of the labels for the fine-tuning budget."))
    supervised.add_argument("--preset", help=f"{preset_help()}: data, model and crop settings")
    supervised.add_argument("--output", type=Path, help="also write results.md / results.json into this folder")
    supervised.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line of stdout")
    supervised_options = [*_SUPERVISED, _LABEL_FRACTIONS, *_TRAINING]
    _add(supervised, supervised_options)
    supervised.set_defaults(handler=lambda args: _run_supervised(args, supervised_options))

    # The frozen-encoder commands (their parsers made in main.py) gain their options and handlers here.
    _add(commands.choices["linear-eval"], [*_LINEAR, _FEATURES, _SEED])
    commands.choices["linear-eval"].set_defaults(handler=lambda args: _run_frozen(args, "linear", [*_LINEAR, _FEATURES, _SEED]))
    _add(commands.choices["knn"], [_FEATURES, _SEED])
    commands.choices["knn"].set_defaults(handler=lambda args: _run_frozen(args, "knn", [_FEATURES, _SEED]))


def _finish(args: argparse.Namespace, rows: list, summary: dict[str, Any], output: Path | None) -> int:
    from simclr.evaluate.results import format_table, sort_rows, write_results

    rows = sort_rows(rows)
    print(format_table(rows))
    result: dict[str, Any] = {**summary, "rows": [row.to_dict() for row in rows]}
    if output is not None:
        markdown, data = write_results(output, rows, summary)
        print(f"\nwrote {markdown} and {data}")
        result.update(results_md=str(markdown), results_json=str(data))
    if args.json:
        print_json_last(result)
    return 0


def _run_evaluate(args: argparse.Namespace, options: list[Option]) -> int:
    from simclr.evaluate.run import evaluate_run

    result = evaluate_run(args.run, None, args.data, False, args.checkpoint, args.device, _overrides(args, options))
    return _finish(args, result["rows"], result["summary"], args.output or args.run)


def _run_finetune(args: argparse.Namespace, options: list[Option]) -> int:
    from simclr.evaluate.run import evaluate_run

    result = evaluate_run(args.run, ("finetune",), args.data, False, args.checkpoint, args.device, _overrides(args, options))
    return _finish(args, result["rows"], result["summary"], None)


def _run_supervised(args: argparse.Namespace, options: list[Option]) -> int:
    from simclr.config import Config, load_preset
    from simclr.evaluate.protocols import supervised_row
    from simclr.evaluate.run import apply_overrides, describe, labelled_data
    from simclr.runs import resolve_config, resolve_device
    from simclr.validation import eval_label_fractions

    started = time.perf_counter()
    config = Config()
    if args.preset:
        load_preset(config, args.preset)
    apply_overrides(config, _overrides(args, options))
    data = labelled_data(config)
    config = resolve_config(config, data.image_size)
    device = resolve_device(config.train.device)
    rows = [supervised_row(config, data, fraction, device) for fraction in eval_label_fractions(config.eval.label_fractions)]
    summary = {**describe(config, data, device), "wall time": f"{time.perf_counter() - started:.0f} s"}
    return _finish(args, rows, summary, args.output)


def _knn_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.k is not None:
        if args.k < 1:
            raise SimCLRError(f"--k must be >= 1, got {args.k}")
        overrides["eval.knn_k"] = args.k
    if args.temperature is not None:
        if args.temperature <= 0:
            raise SimCLRError(f"--temperature must be > 0, got {args.temperature}")
        overrides["eval.knn_temperature"] = args.temperature
    return overrides


def _run_frozen(args: argparse.Namespace, protocol: str, options: list[Option]) -> int:
    """``linear-eval`` / ``knn``: one protocol on the frozen encoder, one summary line (and ``--json``)."""
    from simclr.evaluate.run import evaluate_run

    overrides = {**(_knn_overrides(args) if protocol == "knn" else {}), **_overrides(args, options)}
    result = evaluate_run(args.run, (protocol,), args.data, args.random_init, args.checkpoint, args.device, overrides)
    scores = result[protocol]
    print(f"{protocol} on {result['data']} ({result['encoder']}): top-1 {scores['top1']:.4f}, top-5 {scores['top5']:.4f}")
    if args.json:
        print_json_last({**scores, "protocol": protocol, "encoder": result["encoder"], "data": result["data"], "features": scores["details"]["features"]})
    return 0

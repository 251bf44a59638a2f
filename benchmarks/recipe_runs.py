"""Measure pretraining recipes on image folders: SimCLR runs vs random init vs raw pixels, over seeds.

    python benchmarks/recipe_runs.py --data data/real/fashion-mnist --budget 4m --seeds 0,1,2 \\
        --variant recipe= --variant flips=--set,augment.flip_p=0.5 [--baselines] [--runs runs/recipe]

Each ``--variant NAME=ARGS`` (ARGS: extra ``simclr pretrain`` arguments, comma-separated) runs
``simclr pretrain --data DATA --time-budget B --seed S ARGS`` (or ``--epochs E`` for a fixed
schedule, whose accuracy does not depend on the machine's speed), then ``simclr linear-eval`` and
``simclr knn``. ``--lightly PYTHON`` trains lightly 1.6.0 after each seed's first variant with
the same network, budget and probe (``peers/lightly_simclr.py --like RUN``). ``--baselines`` adds the same network at random init (read off the first run)
and raw pixels (the same linear probe and kNN on standardised pixels). Every result is one JSON
line appended to ``--results``; the last stdout line is a JSON summary (mean ± std per variant).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SIMCLR = [sys.executable, "-m", "simclr"]


def _json_last(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def simclr_run(data: str, run: Path, schedule: list[str], seed: int, extra: list[str]) -> dict:
    """Pretrain, then probe; returns the row (pretraining wall time measured around the command)."""
    started = time.perf_counter()
    done = subprocess.run([*SIMCLR, "pretrain", "--data", data, "--output", str(run), "--seed", str(seed), *schedule, *extra],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pretraining failed: {done.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    steps = int(json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1]).get("step", 0))
    linear = _json_last([*SIMCLR, "linear-eval", str(run), "--json"])
    knn = _json_last([*SIMCLR, "knn", str(run), "--json"])
    return {"linear": linear["top1"], "knn": knn["top1"], "pretrain_seconds": round(seconds, 1), "steps": steps}


def lightly_run(python: str, like: Path, budget: str) -> dict:
    """lightly 1.6.0 trained like the simclr run ``like`` for the same wall time, probed the same way."""
    from simclr.config import parse_duration

    output = like.with_name(like.name + "-lightly")
    result = _json_last([python, str(HERE / "peers" / "lightly_simclr.py"), "--like", str(like), "--output", str(output),
                         "--time-budget", str(parse_duration(budget))])
    return {"variant": result["peer"], "linear": result["linear_top1"], "knn": result["knn_top1"],
            "pretrain_seconds": result["wall_s"], "steps": result["steps"]}


def random_init(run: Path) -> dict:
    linear = _json_last([*SIMCLR, "linear-eval", str(run), "--random-init", "--json"])
    knn = _json_last([*SIMCLR, "knn", str(run), "--random-init", "--json"])
    return {"linear": linear["top1"], "knn": knn["top1"]}


def raw_pixels(data: str) -> dict:
    """The same SGD linear probe (standardised inputs, 90 epochs) and kNN on the pixels themselves."""
    from simclr.config import EvalConfig
    from simclr.data import load_data
    from simclr.evaluate.knn import knn_evaluate
    from simclr.evaluate.linear_sgd import linear_sgd_evaluate

    splits, ev = load_data(data), EvalConfig()

    def pixels(dataset) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        items = [dataset[i] for i in range(len(dataset))]
        return torch.stack([image.float().flatten() / 255 for image, _ in items]), torch.tensor([label for _, label in items])

    train, test = pixels(splits.train), pixels(splits.test)
    linear = linear_sgd_evaluate(*train, *test, splits.num_classes, ev.linear_epochs, ev.linear_batch_size, ev.linear_lr)
    knn = knn_evaluate(*train, *test, splits.num_classes, ev.knn_k, ev.knn_temperature)
    return {"linear": linear["top1"], "knn": knn["top1"]}


def summarise(rows: list[dict]) -> dict:
    """Mean ± std (over seeds) of linear and kNN top-1 per variant."""
    out: dict = {}
    for name in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == name]
        out[name] = {key: [round(statistics.mean(r[key] for r in mine), 4), round(statistics.pstdev(r[key] for r in mine), 4)]
                     for key in ("linear", "knn")} | {"seeds": len(mine)}
    return out


def markdown(results: Path) -> str:
    """A table of every (dataset, schedule, variant) in ``results``: linear and kNN top-1, mean ± std over seeds.

    Also the share of the random-init encoder's linear error that each SimCLR variant removes."""
    every = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    # A measurement repeated (the same dataset, schedule, variant and seed) counts once: the latest.
    rows = list({(r["dataset"], r.get("schedule", ""), r["variant"], r["seed"]): r for r in every}.values())
    lines = ["| dataset | schedule | variant | seeds | linear top-1 | kNN top-1 | steps | pretraining s |", "|---|---|---|---:|---:|---:|---:|---:|"]
    groups = dict.fromkeys((row["dataset"], row.get("schedule", ""), row["variant"]) for row in rows)
    for dataset, schedule, variant in groups:
        mine = [r for r in rows if (r["dataset"], r.get("schedule", ""), r["variant"]) == (dataset, schedule, variant)]

        def cell(key: str, scale: float = 100.0, digits: int = 1) -> str:
            values = [r[key] * scale for r in mine if key in r]
            if not values:
                return "—"
            return f"{statistics.mean(values):.{digits}f}" + (f" ± {statistics.pstdev(values):.{digits}f}" if len(values) > 1 else "")

        lines.append(f"| {dataset} | {schedule or '—'} | {variant} | {len(mine)} | {cell('linear')} | {cell('knn')} | "
                     f"{cell('steps', 1.0, 0)} | {cell('pretrain_seconds', 1.0, 0)} |")
    lines += ["", "Share of the random-init encoder's linear error removed (means over seeds):", ""]
    for dataset, schedule, variant in groups:
        base = [r["linear"] for r in rows if (r["dataset"], r["variant"]) == (dataset, "random init")]
        mine = [r["linear"] for r in rows if (r["dataset"], r.get("schedule", ""), r["variant"]) == (dataset, schedule, variant)]
        if base and variant not in ("random init", "raw pixels"):
            removed = (statistics.mean(mine) - statistics.mean(base)) / (1 - statistics.mean(base))
            lines.append(f"- {dataset}, {variant}: {100 * removed:.1f} %")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--markdown"]:
        print(markdown(Path(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--budget", help="time budget per run (e.g. 4m); or --epochs")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--variant", action="append", default=[], help="NAME=comma,separated,pretrain,args")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--runs", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--results", type=Path, default=HERE / "recipe_results.jsonl")
    parser.add_argument("--lightly", metavar="PYTHON",
                        help="also train lightly side by side after each seed's first variant, with the same network, "
                             "budget and probe (peers/lightly_simclr.py --like RUN), run by this Python (its venv: peers/setup_lightly.sh)")
    args = parser.parse_args()
    if args.lightly and not args.budget:
        parser.error("--lightly compares at equal wall time: give --budget")
    schedule = ["--time-budget", args.budget] if args.budget else ["--epochs", str(args.epochs)]
    dataset = Path(args.data).name
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for spec in args.variant or ["recipe="]:
            name, _, extra = spec.partition("=")
            run = args.runs / f"{dataset}-{name}-{args.budget or f'e{args.epochs}'}-s{seed}"
            row = {"dataset": dataset, "variant": name, "seed": seed, "schedule": " ".join(schedule), "args": extra,
                   **simclr_run(args.data, run, schedule, seed, [a for a in extra.split(",") if a])}
            rows.append(row)
            first = spec == (args.variant or ["recipe="])[0]
            if args.baselines and first:
                rows.append({"dataset": dataset, "variant": "random init", "seed": seed, **random_init(run)})
            peer = [lightly_run(args.lightly, run, args.budget) | {"dataset": dataset, "seed": seed, "schedule": row["schedule"]}
                    ] if args.lightly and first else []
            rows.extend(peer)
            for new in (row, *peer):
                print(json.dumps(new), flush=True)
                with open(args.results, "a") as handle:
                    handle.write(json.dumps(new) + "\n")
    if args.baselines:
        pixels = {"dataset": dataset, "variant": "raw pixels", "seed": 0, **raw_pixels(args.data)}
        rows.append(pixels)
        with open(args.results, "a") as handle:
            for row in rows:
                if row["variant"] in ("random init", "raw pixels"):
                    handle.write(json.dumps(row) + "\n")
    print(json.dumps({"dataset": dataset, "schedule": " ".join(schedule), "summary": summarise(rows)}))


if __name__ == "__main__":
    main()

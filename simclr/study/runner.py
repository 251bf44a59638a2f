"""Running a study: every variant an ordinary run folder under the study's output, resumable.

``DIR/<study>/<variant>/`` (``…/seed-S/`` with several seeds) is a ``simclr pretrain`` run
folder and holds the variant's ``result.json`` once it is evaluated. A variant whose
``result.json`` exists is never run again; a run folder with checkpoints but no
``pretrain.json`` (a killed pretraining) resumes from its newest checkpoint. Variants with
the same config delta and seed share one run (``DIR/runs.json`` records which folder holds
it), so the ``layer`` study probes one network several times, and reuses the ``head``
study's MLP run when both are asked for.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simclr import checkpoint as ckpt
from simclr.config import Config, load_preset, set_value
from simclr.errors import SimCLRError
from simclr.evaluate.protocols import supervised_row
from simclr.evaluate.run import evaluate_run, labelled_data
from simclr.recipe import measure_data
from simclr.runs import build_augmentation, load_run_config, resolve_device, resolve_with_recipe
from simclr.study.variants import Variant, expand_all
from simclr.train.metrics import read_metrics
from simclr.train.trainer import pretrain
from simclr.validation import validate

log = logging.getLogger("simclr")
DEFAULT_EPOCHS = 15  # per pretraining run: about 4 min of a 2-core CPU on mnist5k
# What a study changes in the base config unless --set says otherwise: the study runs kNN itself
# at the end (no monitor), and checkpoints often so that a killed variant loses little.
STUDY_DEFAULTS = {"train.knn_every": 0, "train.checkpoint_every": 50, "train.keep_checkpoints": 2}


class StudyStopped(Exception):
    """A signal stopped a variant's pretraining; its checkpoint is saved and the study resumes."""

    def __init__(self, signal: str, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal} in {run_dir}")
        self.signal, self.run_dir = signal, run_dir


@dataclass
class Study:
    """What to run: the base config, the variants, the seeds, and where (``output``)."""

    output: Path
    base: Config
    variants: list[Variant]
    seeds: tuple[int, ...]

    def folder(self, variant: Variant, seed: int) -> Path:
        """``output/<study>/<variant>``, with ``/seed-S`` when the study runs several seeds."""
        folder = self.output / variant.study / variant.name
        return folder / f"seed-{seed}" if len(self.seeds) > 1 else folder

    def config(self, variant: Variant, seed: int, output: Path | None = None) -> Config:
        """The base config with the variant's delta, its seed, layer and run folder."""
        config = copy.deepcopy(self.base)
        for key, value in variant.delta.items():
            set_value(config, key, value)
        config.train.seed, config.eval.features = seed, variant.features
        config.train.output = str(output or self.folder(variant, seed))
        return config


def base_config(data: str, preset: str | None = None, sets: list[str] | None = None, epochs: int | None = None,
                time_budget: str | None = None) -> Config:
    """Defaults < preset < the study's defaults and budget < ``--set KEY=VALUE``.

    The budget of every pretraining run: ``time_budget``, else ``epochs`` (default
    ``DEFAULT_EPOCHS``); the supervised baselines train ``epochs`` epochs too.
    """
    config = Config()
    if preset:
        load_preset(config, preset)
    set_value(config, "data.name", data)
    for key, value in STUDY_DEFAULTS.items():
        set_value(config, key, value)
    if epochs is not None and time_budget is not None:
        raise SimCLRError("give --epochs or --time-budget, not both")
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    config.train.epochs, config.train.time_budget = (None if time_budget else epochs), time_budget
    config.eval.finetune_epochs = epochs
    for item in sets or []:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise SimCLRError(f"--set expects KEY=VALUE, got '{item}'")
        set_value(config, key.strip(), value.strip())
    validate(config)
    return config


def plan_study(output: Path, base: Config, studies: tuple[str, ...], seed: int = 0, seeds: int = 1) -> Study:
    """The study's variants checked up front (every variant's config valid) and ``output`` claimed for this base config."""
    if seeds < 1 or seed < 0:
        raise SimCLRError(f"--seeds must be >= 1 and --seed >= 0, got {seeds} and {seed}")
    epochs = base.train.epochs or base.eval.finetune_epochs or DEFAULT_EPOCHS
    study = Study(output, base, expand_all(studies, base.model.proj_layers, epochs), tuple(range(seed, seed + seeds)))
    for variant in study.variants:
        validate(study.config(variant, seed))
    labelled_data(base)  # before any pretraining: every variant is evaluated on labels
    _claim(output, base)
    return study


# Options that do not change a result: a study may continue with other values of these.
_FREE = {("train", "device"), ("data", "workers"), ("data", "root")}


def _claim(output: Path, base: Config) -> None:
    """Write ``output/base.json``, or check that the folder's earlier study had the same base config."""
    path, current = output / "base.json", base.to_dict()
    if path.is_file():
        saved = json.loads(path.read_text())
        changed = [f"{section}.{key}: {saved.get(section, {}).get(key)!r} before vs {value!r} now"
                   for section, values in current.items() for key, value in values.items()
                   if (section, key) not in _FREE and saved.get(section, {}).get(key) != value]
        if changed:
            raise SimCLRError(f"'{output}' holds a study of another base config ({'; '.join(changed[:3])}); "
                              "rerun it with the same options or choose another --output")
    else:
        write_json(path, current)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(temporary, path)


def run_study(study: Study, after_each: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run (or reuse) every variant for every seed; ``after_each(result)`` follows each one. Returns the results."""
    results = []
    for seed in study.seeds:
        for variant in study.variants:
            result = run_unit(study, variant, seed)
            results.append(result)
            if after_each:
                after_each(result)
    return results


def run_unit(study: Study, variant: Variant, seed: int) -> dict[str, Any]:
    """The variant's ``result.json``: read if it exists, else made (pretraining as needed, then evaluation)."""
    path = study.folder(variant, seed) / "result.json"
    if path.is_file():
        log.info("study: %s/%s (seed %d) is done already", variant.study, variant.name, seed)
        return json.loads(path.read_text())
    log.info("study: %s/%s (seed %d): %s", variant.study, variant.name, seed, variant.delta)
    result = {"study": variant.study, "variant": variant.name, "seed": seed, "kind": variant.kind, "features": variant.features,
              "delta": variant.delta, "run": None, "top1": None, "top5": None, "knn_top1": None, "contrastive_acc": None,
              "pretrain_seconds": 0.0, "eval_seconds": 0.0, "steps": None, "error": None}
    if variant.kind == "supervised":
        result.update(_supervised(study, variant, seed))
    else:
        run_dir, summary = _pretrained(study, variant, seed)
        result.update(run=os.path.relpath(run_dir, study.output), pretrain_seconds=summary.get("seconds", 0.0),
                      steps=summary.get("steps"), error=summary.get("error"))
        if result["error"] is None:
            result.update(_evaluate(study, run_dir, variant))
    result["seconds"] = round(result["pretrain_seconds"] + result["eval_seconds"], 1)
    write_json(path, result)
    return result


def _run_folder(study: Study, variant: Variant, seed: int) -> Path:
    """The folder of the pretraining run of (delta, seed): the first variant that needed it, recorded in ``runs.json``."""
    registry_path = study.output / "runs.json"
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {}
    key = json.dumps({"delta": variant.delta, "seed": seed}, sort_keys=True)
    if key not in registry:
        registry[key] = os.path.relpath(study.folder(variant, seed), study.output)
        write_json(registry_path, registry)
    return study.output / registry[key]


def _pretrained(study: Study, variant: Variant, seed: int) -> tuple[Path, dict[str, Any]]:
    """Pretrain the variant's network unless done (resuming a killed run); the run folder and its ``pretrain.json``."""
    run_dir = _run_folder(study, variant, seed)
    done = run_dir / "pretrain.json"
    if done.is_file():
        return run_dir, json.loads(done.read_text())
    resume = bool(ckpt.list_checkpoints(run_dir / "checkpoints"))
    # A resumed run continues from its own config.yaml (its schedule included), as `simclr pretrain --resume` does.
    config = load_run_config(run_dir) if resume else study.config(variant, seed, run_dir)
    try:
        summary = pretrain(config, resume=resume)
    except SimCLRError as error:
        if "became" not in str(error).split(":")[0]:  # only a diverged run (non-finite loss or weights) is a result
            raise
        log.warning("study: %s diverged: %s", run_dir, error)
        summary = {"error": str(error).split(":")[0], "seconds": 0.0}
    if summary.get("stopped_by"):
        raise StudyStopped(summary["stopped_by"], run_dir)
    write_json(done, summary)
    return run_dir, summary


def _evaluate(study: Study, run_dir: Path, variant: Variant) -> dict[str, Any]:
    """Linear evaluation and kNN of the run's frozen layer ``variant.features``, and its last contrastive accuracy.

    Kept in the run folder as ``probe-<layer>.json``: a shared run is probed once per layer.
    """
    cache = run_dir / f"probe-{variant.features}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    started = time.perf_counter()
    result = evaluate_run(run_dir, ("linear", "knn"), overrides={"eval.features": variant.features})
    rows = [row for row in read_metrics(run_dir / "metrics.jsonl") if row.get("contrastive_acc") is not None]
    probe = {"top1": result["linear"]["top1"], "top5": result["linear"]["top5"], "knn_top1": result["knn"]["top1"],
             "contrastive_acc": rows[-1]["contrastive_acc"] if rows else None, "eval_seconds": round(time.perf_counter() - started, 1)}
    write_json(cache, probe)
    return probe


def _supervised(study: Study, variant: Variant, seed: int) -> dict[str, Any]:
    """The supervised baseline: the variant's network from scratch on every label, ``eval.finetune_epochs`` epochs."""
    started = time.perf_counter()
    config = study.config(variant, seed)
    data = labelled_data(config)
    device = resolve_device(config.train.device)
    facts = measure_data(data.pretrain, config.data.image_size or data.image_size, seed)
    config, _ = resolve_with_recipe(config, facts, 1, device.type != "cpu")
    views = build_augmentation(config).view_a if variant.views == "simclr" else None
    row = supervised_row(config, data, 1.0, device, views)
    return {"top1": row.top1, "top5": row.top5, "steps": row.details.get("steps"), "views": variant.views,
            "eval_seconds": round(time.perf_counter() - started, 1)}

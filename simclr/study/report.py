"""A study's results: per-variant means over seeds, a verdict per finding of the paper, and
``study.json``, ``study.md`` and ``plots/<study>.png``; ``write_study_page`` makes ``report.html``."""

from __future__ import annotations

import datetime
import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simclr.study.plots import plot_study
from simclr.study.runner import write_json
from simclr.study.variants import COLOR_STRENGTHS, COMPOSITION_OPS, STUDIES, TEMPERATURES, WIDTHS

Get = Callable[..., float | None]  # get(variant, metric="top1") of one seed's results of one study
_METRICS = ("top1", "top5", "knn_top1", "contrastive_acc", "seconds")


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _best(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _gain_versus_supervised(get: Get, label: str, values: tuple[float, ...]) -> float | None:
    """(SimCLR at the largest value - at the smallest) - (the same for the supervised baseline)."""
    lo, hi = f"{label}{min(values):g}", f"{label}{max(values):g}"
    return _diff(_diff(get(f"simclr-{hi}"), get(f"simclr-{lo}")), _diff(get(f"supervised-{hi}"), get(f"supervised-{lo}")))


def _composition(get: Get, against: str) -> float | None:
    ops = list(COMPOSITION_OPS)
    pairs = [f"{a}+{b}" for i, a in enumerate(ops) for b in ops[i + 1:] if f"{a}+{b}" != "crop+color"]
    return _diff(get("crop+color"), _best([get(name) for name in (ops if against == "alone" else pairs)]))


_CELL = re.compile(r"b(\d+)-e(\d+)")


def _batch_epochs(get: Get, names: list[str]) -> float | None:
    """(largest - smallest batch at the fewest epochs) - (the same at the most epochs)."""
    cells = {(int(m[1]), int(m[2])): name for name in names if (m := _CELL.fullmatch(name))}
    batches, lengths = sorted({b for b, _ in cells}), sorted({e for _, e in cells})
    if len(batches) < 2 or len(lengths) < 2:  # nothing to compare
        return None

    def gain(epochs: int) -> float | None:
        return _diff(get(cells.get((batches[-1], epochs), "")), get(cells.get((batches[0], epochs), "")))

    return _diff(gain(lengths[0]), gain(lengths[-1]))


@dataclass(frozen=True)
class Finding:
    """A claim of the paper, tested on one study: it holds when ``margin`` (mean over seeds) is > 0."""

    study: str
    text: str
    paper: str
    margin: Callable[[Get, list[str]], float | None]


FINDINGS: tuple[Finding, ...] = (
    Finding("head", "a non-linear projection head beats a linear one (linear top-1 on h)", "Figure 8: about +3 %",
            lambda get, _: _diff(get("mlp"), get("linear"))),
    Finding("head", "a non-linear projection head beats no head (linear top-1 on h)", "Figure 8: more than +10 %",
            lambda get, _: _diff(get("mlp"), get("none"))),
    Finding("layer", "h, before the projection head, is a better representation than z = g(h)", "Figure 8, B.4: more than +10 %",
            lambda get, _: _diff(get("h"), get("z"))),
    Finding("composition", "crop + colour beats every op alone", "Figure 5",
            lambda get, _: _composition(get, "alone")),
    Finding("composition", "crop + colour is the best pair of ops", "Figure 5",
            lambda get, _: _composition(get, "pairs")),
    Finding("color-strength", "stronger colour distortion helps SimCLR more than supervised learning", "Table 1",
            lambda get, _: _gain_versus_supervised(get, "s", COLOR_STRENGTHS)),
    Finding("temperature", "ℓ2 normalisation gives the better representation (best linear top-1 over τ)", "Table 5",
            lambda get, _: _diff(_best([get(f"tau{t:g}") for t in TEMPERATURES]), _best([get(f"tau{t:g}-raw") for t in TEMPERATURES]))),
    Finding("temperature", "without ℓ2 normalisation the contrastive accuracy is higher (mean over τ)", "Table 5",
            lambda get, _: _diff(_mean([get(f"tau{t:g}-raw", "contrastive_acc") for t in TEMPERATURES]),
                                 _mean([get(f"tau{t:g}", "contrastive_acc") for t in TEMPERATURES]))),
    Finding("temperature", "with ℓ2 normalisation a smaller τ beats τ = 1", "Table 5",
            lambda get, _: _diff(_best([get(f"tau{t:g}") for t in TEMPERATURES if t < 1]), get("tau1"))),
    Finding("batch-epochs", "larger batches help more when training is short", "Figure 9", _batch_epochs),
    Finding("width", "a wider network helps SimCLR more than supervised learning", "Figure 7",
            lambda get, _: _gain_versus_supervised(get, "x", WIDTHS)),
)


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _spread(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{study: {variant: {top1, knn_top1, contrastive_acc, …, delta}}}``: means over seeds, in run order.

    With several seeds each accuracy also has its ``*_spread`` (standard deviation) and ``top1_seeds``.
    """
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for result in results:
        grouped.setdefault(result["study"], {}).setdefault(result["variant"], []).append(result)
    studies: dict[str, dict[str, dict[str, Any]]] = {}
    for study, variants in grouped.items():
        for name, runs in variants.items():
            row: dict[str, Any] = {"kind": runs[0]["kind"], "features": runs[0]["features"], "delta": runs[0]["delta"]}
            if runs[0].get("views"):
                row["views"] = runs[0]["views"]
            for metric in _METRICS:
                known = [run[metric] for run in runs if run.get(metric) is not None]
                row[metric] = round(statistics.fmean(known), 6) if known else None
                if len(runs) > 1 and metric != "seconds":
                    row[f"{metric}_spread"] = None if _spread(known) is None else round(_spread(known), 6)  # type: ignore[arg-type]
            if len(runs) > 1:
                row["seeds"], row["top1_seeds"] = [run["seed"] for run in runs], [run["top1"] for run in runs]
            row["error"] = next((run["error"] for run in runs if run.get("error")), None)
            studies.setdefault(study, {})[name] = row
    return studies


def _getter(runs: dict[str, dict[str, Any]]) -> Get:
    def get(name: str, metric: str = "top1") -> float | None:
        return (runs.get(name) or {}).get(metric)
    return get


def findings(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A verdict per finding whose study ran: ``{finding, study, paper, holds, margin, spread, seeds}``."""
    by_seed: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for result in results:
        by_seed.setdefault((result["study"], result["seed"]), {})[result["variant"]] = result
    verdicts = []
    for finding in FINDINGS:
        margins = []
        for (study, _), runs in sorted(by_seed.items()):
            if study == finding.study:
                margins.append(finding.margin(_getter(runs), list(runs)))
        known = [m for m in margins if m is not None]
        if not margins:
            continue
        margin = statistics.fmean(known) if known else None
        verdicts.append({"finding": finding.text, "study": finding.study, "paper": finding.paper,
                         "holds": None if margin is None else margin > 0, "margin": None if margin is None else round(margin, 6),
                         "spread": None if _spread(known) is None else round(_spread(known), 6), "seeds": len(known)})  # type: ignore[arg-type]
    return verdicts


def _percent(value: float | None, signed: bool = False) -> str:
    return "–" if value is None else (f"{100 * value:+.1f} pp" if signed else f"{100 * value:.1f} %")


def _delta_text(delta: dict[str, Any]) -> str:
    return ", ".join(f"{key.split('.')[-1]}={value}" for key, value in delta.items()) or "–"


def _settings_md(payload: dict[str, Any]) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in payload["settings"].items())


def _findings_md(payload: dict[str, Any]) -> str:
    lines = ["| finding | study | paper | holds | margin | seed spread |", "|---|---|---|---|---:|---:|"]
    for f in payload["findings"]:
        holds = {True: "holds", False: "does not hold", None: "not measured"}[f["holds"]]
        lines.append(f"| {f['finding']} | {f['study']} | {f['paper']} | {holds} | {_percent(f['margin'], True)} | {_percent(f['spread'])} |")
    return "\n".join(lines)


def _study_md(variants: dict[str, dict[str, Any]]) -> str:
    lines = ["| variant | config delta | probe | linear top-1 | kNN top-1 | contrastive acc | wall time |", "|---|---|---|---:|---:|---:|---:|"]
    for name, row in variants.items():
        probe = f"supervised ({row.get('views', 'simclr')} views)" if row["kind"] == "supervised" else f"frozen {row['features']}"
        spread = f" ± {_percent(row['top1_spread'])}" if row.get("top1_spread") is not None else ""
        top1 = f"diverged ({row['error']})" if row.get("error") else _percent(row["top1"]) + spread
        lines.append(f"| {name} | {_delta_text(row['delta'])} | {probe} | {top1} | {_percent(row['knn_top1'])} | "
                     f"{_percent(row['contrastive_acc'])} | {row['seconds'] or 0:.0f} s |")
    return "\n".join(lines)


def markdown(payload: dict[str, Any]) -> str:
    """``study.md``: settings, verdicts, then a figure and a table per study."""
    parts = ["# SimCLR study", _settings_md(payload), "## Findings", _findings_md(payload)]
    for study, variants in payload["studies"].items():
        parts += [f"## {study}", f"![{study}](plots/{study}.png)", _study_md(variants)]
    return "\n\n".join(parts) + "\n"


def build_payload(results: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """What ``study.json`` holds (and ``--json`` prints): settings, per-study variants, findings."""
    studies = summarize(results)
    ordered = {study: studies[study] for study in STUDIES if study in studies}
    return {"settings": settings, "studies": ordered, "findings": findings(results)}


def write_study(output: Path, payload: dict[str, Any], plots: bool = True) -> dict[str, Path]:
    """Write ``study.json``, ``study.md`` and (``plots``) ``plots/<study>.png``; returns the paths by name."""
    write_json(output / "study.json", payload)
    (output / "study.md").write_text(markdown(payload))
    paths = {"study.json": output / "study.json", "study.md": output / "study.md"}
    if plots:
        for study, variants in payload["studies"].items():
            paths[study] = plot_study(study, variants, output / "plots" / f"{study}.png")
    return paths


def write_study_page(output: Path) -> Path:
    """``output/report.html``: the study's tables and its figures (redrawn into ``output/report/``)."""
    from simclr.report import html

    payload = json.loads((output / "study.json").read_text())
    sections = [("Study", html.markdown(_settings_md(payload))), ("Findings", html.markdown(_findings_md(payload)))]
    for study, variants in payload["studies"].items():
        figure = plot_study(study, variants, output / "report" / f"{study}.png")
        sections.append((study, html.image(figure, f"{study} study") + html.markdown(_study_md(variants))))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = html.page(f"SimCLR study: {output.resolve().name}", f"{output.resolve()} · written {stamp}", sections)
    (output / "report.html").write_text(page, encoding="utf-8")
    return output / "report.html"

"""A study's verdicts, tables and figures from given results: each finding's margin by hand, the seed
spread, a diverged variant, and every study's figure drawn."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from simclr.study import STUDIES, expand
from simclr.study.report import build_payload, findings, markdown, summarize, write_study, write_study_page


def result(study: str, variant: str, top1: float | None, seed: int = 0, **extra: object) -> dict:
    kind = "supervised" if variant.startswith("supervised") else "simclr"
    row = {"study": study, "variant": variant, "seed": seed, "kind": kind, "features": "h", "delta": {}, "top1": top1, "top5": top1,
           "knn_top1": top1, "contrastive_acc": 0.5, "seconds": 10.0, "error": None}
    return {**row, **extra}


def verdict(results: list[dict], text: str) -> dict:
    return next(f for f in findings(results) if f["finding"].startswith(text))


def test_head_and_layer_margins_and_the_seed_spread() -> None:
    tops = {0: {"mlp": 0.90, "linear": 0.86, "none": 0.70}, 1: {"mlp": 0.92, "linear": 0.90, "none": 0.95}}
    results = [result("head", name, top1, seed) for seed, row in tops.items() for name, top1 in row.items()]
    linear = verdict(results, "a non-linear projection head beats a linear one")
    assert linear["holds"] is True and linear["margin"] == pytest.approx(0.03) and linear["seeds"] == 2
    assert linear["spread"] == pytest.approx(statistics.stdev([0.04, 0.02]), abs=1e-6)
    none = verdict(results, "a non-linear projection head beats no head")
    assert none["margin"] == pytest.approx((0.20 - 0.03) / 2) and none["holds"] is True
    summary = summarize(results)["head"]["none"]
    assert summary["top1"] == pytest.approx(0.825) and summary["top1_seeds"] == [0.70, 0.95] and summary["seeds"] == [0, 1]
    assert [f["study"] for f in findings(results)] == ["head", "head"]  # only the studies that ran


def test_layer_composition_and_temperature_margins() -> None:
    layer = [result("layer", "h", 0.9), result("layer", "head1", 0.85), result("layer", "z", 0.8)]
    assert verdict(layer, "h, before the projection head")["margin"] == pytest.approx(0.1)
    cells = {v.name: 0.5 for v in expand("composition")} | {"crop": 0.6, "color": 0.3, "crop+color": 0.8, "crop+blur": 0.85}
    composition = [result("composition", name, top1) for name, top1 in cells.items()]
    assert verdict(composition, "crop + colour beats every op alone")["margin"] == pytest.approx(0.2)
    best_pair = verdict(composition, "crop + colour is the best pair")
    assert best_pair["margin"] == pytest.approx(-0.05) and best_pair["holds"] is False
    taus = {"tau0.1": 0.8, "tau0.5": 0.75, "tau1": 0.7, "tau0.1-raw": None, "tau0.5-raw": 0.6, "tau1-raw": 0.65}
    temperature = [result("temperature", name, top1, contrastive_acc=0.9 if name.endswith("raw") else 0.6,
                          error="loss became nan at step 3" if top1 is None else None) for name, top1 in taus.items()]
    assert verdict(temperature, "ℓ2 normalisation gives")["margin"] == pytest.approx(0.8 - 0.65)  # the diverged one left out
    assert verdict(temperature, "without ℓ2 normalisation the contrastive")["margin"] == pytest.approx(0.3)
    assert verdict(temperature, "with ℓ2 normalisation a smaller τ")["margin"] == pytest.approx(0.1)


def test_versus_supervised_and_batch_epochs_margins() -> None:
    color = [result("color-strength", f"{kind}-s{s:g}", top1) for kind, row in
             (("simclr", (0.6, 0.7, 0.8)), ("supervised", (0.9, 0.9, 0.88))) for s, top1 in zip((0.25, 0.5, 1.0), row)]
    assert verdict(color, "stronger colour distortion")["margin"] == pytest.approx(0.2 + 0.02)
    width = [result("width", f"{kind}-x{w:g}", top1) for kind, row in
             (("simclr", (0.5, 0.6, 0.7)), ("supervised", (0.8, 0.85, 0.95))) for w, top1 in zip((0.125, 0.25, 0.5), row)]
    assert verdict(width, "a wider network")["margin"] == pytest.approx(0.05)
    cells = {"b64-e5": 0.6, "b64-e15": 0.8, "b256-e5": 0.7, "b256-e15": 0.82}
    batch = [result("batch-epochs", name, top1) for name, top1 in cells.items()]
    assert verdict(batch, "larger batches help more")["margin"] == pytest.approx(0.1 - 0.02)
    assert verdict(batch[:2], "larger batches help more")["holds"] is None  # one batch size only: not measured


def test_every_studys_figure_and_the_tables(tmp_path: Path) -> None:
    results = [result(v.study, v.name, 0.5 + 0.01 * i, seed, contrastive_acc=0.4) for seed in (0, 1)
               for i, v in enumerate(v for study in STUDIES for v in expand(study))]
    results[0]["error"], results[0]["top1"] = "loss became nan at step 9", None
    payload = build_payload(results, {"data": "tiny", "command": "simclr study …"})
    assert list(payload["studies"]) == list(STUDIES) and len(payload["findings"]) == 11
    paths = write_study(tmp_path, payload)
    for study in STUDIES:
        assert paths[study].stat().st_size > 5000
    text = markdown(payload)
    assert "- data: tiny" in text and "| mlp | – | frozen h | diverged (loss became nan at step 9) |" in text
    assert "| linear | – | frozen h | 51.0 % ± 0.0 % |" in text  # the mean of two seeds and their spread
    assert json.loads((tmp_path / "study.json").read_text()) == json.loads(json.dumps(payload))
    page = write_study_page(tmp_path).read_text()
    assert page.count("<img") == len(STUDIES) and "Findings" in page and "supervised (simclr views)" in page

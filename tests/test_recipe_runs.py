"""benchmarks/recipe_runs.py's table: a repeated measurement counts once, and error removed is relative to random init."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("recipe_runs", ROOT / "benchmarks" / "recipe_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_counts_a_repeated_measurement_once_and_gives_the_error_removed(tmp_path: Path) -> None:
    rows = [
        {"dataset": "d", "variant": "random init", "seed": 0, "linear": 0.5, "knn": 0.4},
        {"dataset": "d", "variant": "random init", "seed": 0, "linear": 0.7, "knn": 0.4},  # repeated: the latest counts
        {"dataset": "d", "variant": "random init", "seed": 1, "linear": 0.7, "knn": 0.4},
        {"dataset": "d", "variant": "recipe", "seed": 0, "schedule": "--time-budget 4m", "linear": 0.85, "knn": 0.8, "steps": 10},
        {"dataset": "d", "variant": "recipe", "seed": 1, "schedule": "--time-budget 4m", "linear": 0.95, "knn": 0.8, "steps": 30},
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    table = _module().markdown(results)
    assert "| d | — | random init | 2 | 70.0 ± 0.0 | 40.0 ± 0.0 | — | — |" in table
    assert "| d | --time-budget 4m | recipe | 2 | 90.0 ± 5.0 | 80.0 ± 0.0 | 20 ± 10 | — |" in table
    assert "- d, recipe: 66.7 %" in table  # (0.90 - 0.70) / (1 - 0.70)

"""The benchmark script keeps working: it prints a JSON row and writes its results table."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_pretrain.py"


def test_bench_pretrain_prints_json_and_writes_results(tmp_path):
    results = tmp_path / "RESULTS.md"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--arch", "resnet18", "--width", "0.125", "--image-size", "16",
         "--batch-size", "16", "--steps", "2", "--warmup", "1", "--workers", "0", "--results", str(results)],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["bare_images_per_s"] > 0 and row["end_to_end_images_per_s"] > 0
    assert abs(row["ratio"] - row["end_to_end_images_per_s"] / row["bare_images_per_s"]) < 0.01
    assert "resnet18 x0.125" in results.read_text()

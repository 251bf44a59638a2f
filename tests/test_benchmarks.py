"""`simclr bench` runs every suite, prints JSON lines and merges its rows into RESULTS.md."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench.py"


def test_bench_prints_json_lines_and_merges_results(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(
        {"benchmark": "pretrain", "device": "Some GPU", "arch": "resnet50", "image_size": 224, "batch_size": 256,
         "precision": "bf16", "pipeline": "batched", "threads": 16, "workers": 8, "ratio": 0.95}) + "\n")
    command = [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--threads", "1", "--results-dir", str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert {row["benchmark"] for row in rows} == {"augment", "loss", "pretrain"}
    pretrain = next(row for row in rows if row["benchmark"] == "pretrain")
    assert pretrain["bare_images_per_s"] > 0 and pretrain["end_to_end_images_per_s"] > 0
    assert abs(pretrain["ratio"] - pretrain["end_to_end_images_per_s"] / pretrain["bare_images_per_s"]) < 0.01
    augment = next(row for row in rows if row["benchmark"] == "augment")
    assert abs(augment["ratio"] - augment["batched_images_per_s"] / augment["torchvision_images_per_s"]) < 0.05
    assert {row["chunk_rows"] for row in rows if row["benchmark"] == "loss"} == {None, 16}
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Some GPU" in text and "resnet18 x0.125" in text  # the other machine's row is kept
    # Running again replaces this machine's rows instead of appending duplicates.
    subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    stored = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(stored) == len(rows) + 1

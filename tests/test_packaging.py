"""The built wheel: its metadata, the presets inside it, and the ``simclr`` command run from it outside the checkout."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from simclr import DISTRIBUTION, __version__
from simclr.config import available_presets

REPO = Path(__file__).resolve().parents[1]


def _quiet_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # else setuptools notes that it skips byte-compiling
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from this checkout (without build isolation: offline, about a second), and the build's output."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v", "-w", str(out), str(REPO)],
        capture_output=True, text=True, env=_quiet_env(), timeout=120,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (path,) = out.glob("*.whl")
    return path, build.stdout + build.stderr


def test_wheel_metadata_names_the_free_distribution_and_the_spdx_license(wheel):
    path, log = wheel
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(meta_name).decode())
        entry_points = archive.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Name"] == DISTRIBUTION == "simclr-torch"  # PyPI's "simclr" is someone else's project
    assert meta["Version"] == __version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert "timm" in meta.get_all("Provides-Extra")
    assert "simclr = simclr.cli.main:main" in entry_points
    assert {f"simclr/configs/{name}.yaml" for name in available_presets()} <= set(names)
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "configs/"))]
    warnings = [line for line in log.splitlines() if "warning" in line.lower() and "Location 'file" not in line]
    assert not warnings, "\n".join(warnings)


def _fresh_venv(root: Path) -> Path:
    """A new venv without pip that sees this interpreter's packages (torch …) through a path-only .pth file.

    A path line adds the folder without running its .pth files, so this checkout's editable
    install, whose finder a .pth file starts, stays out of it.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    shared = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(own) / "shared-deps.pth").write_text("\n".join(sorted(shared)) + "\n")
    return python


def test_wheel_installs_in_a_fresh_venv_and_pretrains_one_step_elsewhere(wheel, tmp_path):
    path, _ = wheel
    python = _fresh_venv(tmp_path / "venv")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(path)],
                             capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr[-2000:]
    script = python.parent / "simclr"  # the console script pip wrote from the wheel's entry point
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*argv], cwd=elsewhere, env=_quiet_env(), capture_output=True, text=True, timeout=300)

    where = run(str(python), "-c", "import simclr; print(simclr.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where.stdout + where.stderr  # not the checkout
    version = run(str(script), "--version")
    assert version.returncode == 0 and version.stdout.startswith(f"simclr-torch {__version__} "), version.stdout + version.stderr
    pretrain = run(str(script), "pretrain", "--preset", "demo", "--max-steps", "1", "--workers", "0", "--output", "run")
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    assert "(1 steps" in pretrain.stdout
    assert (elsewhere / "run" / "checkpoints" / "step-00000001.pt").is_file()

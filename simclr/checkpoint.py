"""Checkpoints written atomically, loaded without unpickling code, newest good one found.

A checkpoint is a plain dict of tensors and Python primitives, saved with ``torch.save``
to a temporary file in the same folder, fsync'ed, then renamed over the final name, so a
crash leaves either the old file or the new one, never half of one. Loading uses
``weights_only=True``: a file crafted to run code is refused, not executed. Every file
carries a layout ``version``; older readable ones still give their weights (``READABLE``).
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simclr.config import upgrade_saved
from simclr.errors import SimCLRError

log = logging.getLogger("simclr")
FORMAT, VERSION = "simclr-checkpoint", 2  # 2: the online probe is a parameter group of the one optimizer
READABLE = (1, 2)  # 1: marker "simclr-checkpoint-v1", the probe's optimizer apart (weights load, no resume)
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` via a temp file + fsync + rename in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def load_file(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; ``SimCLRError`` names the file and what is wrong with it."""
    if not path.is_file():
        raise SimCLRError(f"checkpoint '{path}' does not exist")
    if not zipfile.is_zipfile(path):
        raise SimCLRError(f"checkpoint '{path}' is unreadable, truncated or not a torch checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which is exactly what must not happen.
        raise SimCLRError(f"checkpoint '{path}' was refused: it holds objects other than tensors and plain values, and loading it could run code") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise SimCLRError(f"checkpoint '{path}' is unreadable or truncated ({reason})") from None
    marker = state.get("format") if isinstance(state, dict) else None
    version = 1 if marker == f"{FORMAT}-v1" else state.get("version") if marker == FORMAT else None
    if not isinstance(version, int):
        raise SimCLRError(f"checkpoint '{path}' is not a simclr checkpoint (no '{FORMAT}' marker and version)")
    if version not in READABLE:
        newer = " (written by a newer simclr; upgrade to read it)" if version > VERSION else ""
        raise UnsupportedVersionError(f"checkpoint '{path}' has format version {version}; this simclr reads versions {', '.join(map(str, READABLE))}{newer}")
    missing = [key for key in ("step", "model", "config") if key not in state]
    if missing:
        raise SimCLRError(f"checkpoint '{path}' is incomplete: no {', '.join(missing)}")
    return {**state, "version": version, "config": upgrade_saved(state["config"], f"checkpoint '{path}'")}


class UnsupportedVersionError(SimCLRError):
    """A checkpoint of a layout this version cannot read: not damaged, so never set aside."""


def check_resumable(state: dict[str, Any], path: Path) -> None:
    """Training continues only from this version's layout; older files still give their weights."""
    if state["version"] != VERSION:
        raise SimCLRError(f"cannot resume from checkpoint '{path}': its format version {state['version']} keeps the online probe's "
                          f"optimizer apart, which version {VERSION} cannot continue; evaluate or export it, or start a new run")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in ``directory``, oldest step first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def save_checkpoint(state: dict[str, Any], directory: Path, keep: int) -> Path:
    """Write ``state`` as ``step-XXXXXXXX.pt`` and delete all but the newest ``keep``."""
    path = checkpoint_path(directory, int(state["step"]))
    for stale in directory.glob(".step-*.pt.tmp-*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    atomic_save({"format": FORMAT, "version": VERSION, **state}, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(directory: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path]:
    """Newest checkpoint that loads; a damaged newer one is renamed ``*.damaged`` with a warning."""
    candidates = list_checkpoints(directory)
    if not candidates:
        raise SimCLRError(f"no checkpoint found in '{directory}'")
    for path in reversed(candidates):
        try:
            return load_file(path, map_location), path
        except UnsupportedVersionError:
            raise
        except SimCLRError as error:
            # Renamed aside so that later pruning, which keeps the newest names, never keeps it.
            path.rename(path.with_name(path.name + ".damaged"))
            log.warning("skipping damaged checkpoint (kept as %s.damaged): %s", path.name, error)
    raise SimCLRError(f"every checkpoint in '{directory}' is damaged")


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and primitives (loadable with weights_only=True)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), position, has_gauss, cached],
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

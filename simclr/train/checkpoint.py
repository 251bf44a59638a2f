"""Checkpoints written atomically, loaded without unpickling code, newest good one found.

A checkpoint is a plain dict of tensors and Python primitives, saved with ``torch.save``
to a temporary file in the same folder, fsync'ed, then renamed over the final name, so a
crash leaves either the old file or the new one, never half of one. Loading uses
``weights_only=True``: a file crafted to run code is refused, not executed.
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

from simclr.errors import SimCLRError

log = logging.getLogger("simclr")
FORMAT = "simclr-checkpoint-v1"
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
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SimCLRError(f"checkpoint '{path}' is not a simclr checkpoint (no '{FORMAT}' marker)")
    missing = [key for key in ("step", "model", "config") if key not in state]
    if missing:
        raise SimCLRError(f"checkpoint '{path}' is incomplete: no {', '.join(missing)}")
    return state


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
    atomic_save({"format": FORMAT, **state}, path)
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

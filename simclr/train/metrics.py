"""Metrics for programs (``metrics.jsonl``, TensorBoard) from one ``log`` call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.tensorboard import SummaryWriter


class MetricsLogger:
    """Appends one JSON object per row to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    On resume, rows past the checkpoint's step are dropped first, so the file reads as if
    the run had never been interrupted.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        elif resume_step is None:
            self.path.unlink(missing_ok=True)
        self.handle = open(self.path, "a")
        self.pending: list[tuple[int, int, float, dict[str, Tensor]]] = []
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=None if resume_step is None else resume_step + 1)

    def add_step(self, step: int, epoch: int, lr: float, stats: dict[str, Tensor]) -> None:
        """Queue a step's scalars, still on the device; ``flush`` reads them (one host sync per flush)."""
        self.pending.append((step, epoch, lr, stats))

    def flush(self) -> dict[str, Any] | None:
        """Write the queued steps and sync files; returns the last row written, if any."""
        row = None
        for step, epoch, lr, stats in self.pending:
            row = {"step": step, "epoch": epoch, "lr": lr, **{k: round(v.item(), 6) for k, v in stats.items()}}
            self.log(row)
        self.pending.clear()
        self.handle.flush()
        self.writer.flush()
        return row

    def log(self, row: dict[str, Any]) -> None:
        """Write ``row`` (must hold ``step``); numeric entries also go to TensorBoard."""
        self.handle.write(json.dumps(row) + "\n")
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, row["step"])

    def close(self) -> None:
        self.flush()
        self.handle.close()
        self.writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (killed mid-write) is ignored."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows

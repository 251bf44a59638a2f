"""Metrics for programs (``metrics.jsonl``, TensorBoard) from one ``log`` call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, row: dict[str, Any]) -> None:
        """Write ``row`` (must hold ``step``); numeric entries also go to TensorBoard."""
        self.handle.write(json.dumps(row) + "\n")
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, row["step"])

    def flush(self) -> None:
        self.handle.flush()
        self.writer.flush()

    def close(self) -> None:
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

"""Metrics for programs (``metrics.jsonl``, TensorBoard, optionally Weights & Biases) from one ``log`` call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from simclr.errors import SimCLRError


class MetricsLogger:
    """Appends one JSON object per row to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    On resume, rows past the checkpoint's step are dropped first, so the file reads as if
    the run had never been interrupted. With ``wandb_project`` the scalars also go to
    Weights & Biases (the ``wandb`` package is imported only then; its run id is kept in
    ``wandb_run_id`` so a resumed run continues the same W&B run).
    """

    def __init__(
        self,
        run_dir: Path,
        resume_step: int | None = None,
        wandb_project: str | None = None,
        wandb_config: dict[str, Any] | None = None,
    ) -> None:
        self.wandb = _start_wandb(run_dir, wandb_project, wandb_config, resume_step is not None) if wandb_project else None
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        elif resume_step is None:
            self.path.unlink(missing_ok=True)
        self.handle = open(self.path, "a")
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=None if resume_step is None else resume_step + 1)

    def flush(self) -> None:
        """Push written rows to disk and TensorBoard."""
        self.handle.flush()
        self.writer.flush()

    def log(self, row: dict[str, Any]) -> None:
        """Write ``row`` (must hold ``step``); numeric entries also go to TensorBoard."""
        self.handle.write(json.dumps(row) + "\n")
        scalars = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, row["step"])
        if self.wandb is not None and scalars:
            self.wandb.log(scalars, step=row["step"])

    def close(self) -> None:
        self.flush()
        self.handle.close()
        self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _start_wandb(run_dir: Path, project: str, config: dict[str, Any] | None, resume: bool) -> Any:
    """A W&B run named after the run folder; resumed by the id saved in ``run_dir/wandb_run_id``."""
    try:
        import wandb
    except ImportError:
        raise SimCLRError(f"train.wandb_project is '{project}' but the wandb package is not installed (pip install wandb)") from None
    id_file = run_dir / "wandb_run_id"
    run_id = id_file.read_text().strip() if resume and id_file.is_file() else None
    run = wandb.init(project=project, dir=str(run_dir), name=run_dir.name, config=config, id=run_id, resume="allow" if run_id else None)
    id_file.write_text(str(run.id))
    return run


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (killed mid-write) is ignored."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows

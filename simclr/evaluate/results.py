"""One result format for every protocol: rows -> ``results.md`` (a table like the seeds') and ``results.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS: tuple[str, ...] = ("linear", "knn", "finetune", "supervised")
# Table order: the baseline first, then the frozen encoder, then fine-tuning by label fraction.
_ORDER = {"supervised": 0, "linear": 1, "knn": 2, "finetune": 3}


@dataclass
class ResultRow:
    """One evaluated network: test top-1 / top-5 and what it cost.

    ``label_fraction`` is the share of the training labels it saw, ``epochs`` its training
    budget (None for kNN, which does not train), ``params`` the parameters of the evaluated
    network (encoder + any head layers + classifier), ``train_size`` the labelled images used.
    """

    protocol: str
    encoder: str  # "SimCLR", "random init" or "none (from scratch)"
    top1: float
    top5: float
    label_fraction: float
    epochs: int | None
    params: int
    train_size: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        percent = f"{self.label_fraction * 100:g}%"
        return {
            "supervised": f"supervised baseline, {percent} labels",
            "linear": "linear (no fine-tuning)",
            "knn": "kNN (no fine-tuning)",
            "finetune": f"fine-tune, {percent} labels",
        }.get(self.protocol, self.protocol)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **dataclasses.asdict(self)}


def sort_rows(rows: list[ResultRow]) -> list[ResultRow]:
    """Supervised, linear, kNN, fine-tune; by label fraction within a protocol; stable otherwise."""
    return sorted(rows, key=lambda r: (_ORDER.get(r.protocol, 9), r.label_fraction))


def format_table(rows: list[ResultRow]) -> str:
    """Markdown table: method, encoder, top-1, top-5, label fraction, epochs, parameters."""
    lines = [
        "| method | encoder | top-1 | top-5 | label fraction | epochs | parameters |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sort_rows(rows):
        epochs = "—" if r.epochs is None else str(r.epochs)
        lines.append(
            f"| {r.method} | {r.encoder} | {r.top1:.2%} | {r.top5:.2%} | {r.label_fraction:g} | {epochs} | {r.params / 1e6:.3f} M |"
        )
    return "\n".join(lines)


def write_results(folder: Path, rows: list[ResultRow], summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``folder/results.md`` (summary lines + table) and ``folder/results.json``; return both paths.

    ``summary`` holds what the whole table shares (data, model, encoder checkpoint, device,
    wall time); its items become the markdown's heading lines.
    """
    folder.mkdir(parents=True, exist_ok=True)
    heading = [f"- {key}: {value}" for key, value in summary.items()]
    markdown, data = folder / "results.md", folder / "results.json"
    markdown.write_text("# Results\n\n" + "\n".join(heading) + "\n\n" + format_table(rows) + "\n")
    data.write_text(json.dumps({**summary, "rows": [r.to_dict() for r in sort_rows(rows)]}, indent=2) + "\n")
    return markdown, data

"""``benchmarks/results.jsonl`` (every measurement, newest per configuration) and the RESULTS.md made from it.

Rows from different machines live side by side: a new measurement replaces only the row
with the same benchmark, device and settings.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

_KEYS = {
    "augment": ("device", "image_size", "source_size", "batch_size", "threads"),
    "loss": ("device", "batch_size", "dim", "chunk_rows"),
    "pretrain": ("device", "arch", "image_size", "batch_size", "precision", "pipeline", "threads", "workers",
                 "channels_last", "compile"),
    "step_breakdown": ("device", "arch", "image_size", "batch_size", "precision", "pipeline", "threads", "workers",
                       "channels_last", "compile"),
    "folder": ("device", "arch", "image_size", "source_sizes", "batch_size", "precision", "pipeline", "threads", "workers"),
    "folder_demo": ("device", "preset", "batch_size", "threads", "workers"),
    "device_check": ("device", "stage"),
    "short_run": ("device", "data", "preset", "dry_run"),
}

_TABLES = {
    "augment": ("Two-view augmentation, images/s (batched vs torchvision v2 per image, same ops and sizes)",
                ["device", "device_name", "image_size", "source_size", "batch_size", "threads", "batched_images_per_s",
                 "torchvision_images_per_s", "per_image_images_per_s", "ratio"]),
    "loss": ("NT-Xent forward+backward (N pairs, 128-d, fp32): simclr's against a plain torch version in the same process "
             "(median ms of turns taken in alternation; ratio = simclr / plain)",
             ["device", "device_name", "batch_size", "chunk_rows", "threads", "ms_forward_backward", "plain_ms", "ratio", "logits_matrix_gib",
              "peak_memory_gib", "plain_peak_memory_gib"]),
    "pretrain": ("Pretraining images/s against the bare encoder's forward+backward on the same two-view batch",
                 ["device", "arch", "image_size", "batch_size", "precision", "pipeline", "threads", "workers",
                  "channels_last", "compile", "bare_images_per_s", "end_to_end_images_per_s", "ratio", "peak_memory_gib"]),
    "step_breakdown": ("Where a pretraining step's time goes, % of the step (wall clock per part, the device synchronised "
                       "around each part; train_step_ms: the same steps unsplit)",
                       ["device", "arch", "image_size", "batch_size", "precision", "workers", "channels_last", "compile",
                        "step_ms", "data_wait_pct", "augment_pct", "forward_backward_pct", "loss_pct", "optimizer_pct",
                        "logging_pct", "train_step_ms"]),
    "folder": ("Pretraining on a folder of JPEG photos, images/s: simclr against a standard loader (DataLoader, PIL, "
               "torchvision v2 per image) feeding the same network, NT-Xent and LARS",
               ["device", "arch", "image_size", "source_sizes", "images", "batch_size", "steps", "precision", "pipeline", "ran_as",
                "threads", "workers", "simclr_images_per_s", "standard_images_per_s", "ratio"]),
    "folder_demo": ("The demo's pretraining on mnist5k as a folder of PNGs against the same digits in memory, images/s",
                    ["device", "preset", "arch", "image_size", "images", "batch_size", "steps", "threads", "workers",
                     "folder_pipeline", "memory_pipeline", "folder_images_per_s", "memory_images_per_s", "ratio"]),
    "short_run": ("A short pretraining and linear evaluation (benchmarks/gpu_check.py)",
                  ["device", "data", "preset", "dry_run", "pretrain_seconds", "linear_top1"]),
    "device_check": ("The device check's stages (benchmarks/gpu_check.py), newest run per device",
                     ["device", "stage", "status", "seconds", "detail"]),
}


def device_name(device: torch.device) -> str:
    """The device as result rows name it: the GPU's model, or the CPU's architecture and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


_UNSET = {"channels_last": False, "compile": False}  # what rows written before these keys existed ran with


def _identity(row: dict[str, Any]) -> tuple:
    return (row["benchmark"], *(row.get(key, _UNSET.get(key)) for key in _KEYS[row["benchmark"]]))


def record(rows: list[dict[str, Any]], directory: Path) -> Path:
    """Merge ``rows`` into ``directory/results.jsonl`` and rewrite ``directory/RESULTS.md``; returns the latter."""
    directory.mkdir(parents=True, exist_ok=True)
    store = directory / "results.jsonl"
    kept = [json.loads(line) for line in store.read_text().splitlines() if line.strip()] if store.exists() else []
    replaced = {_identity(row) for row in rows}
    merged = [row for row in kept if _identity(row) not in replaced] + rows
    store.write_text("".join(json.dumps(row) + "\n" for row in merged))
    markdown = directory / "RESULTS.md"
    markdown.write_text(render(merged))
    return markdown


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["# Benchmarks", "",
             "Written by `simclr bench` from `results.jsonl` (newest row per configuration; machines side by side).",
             "Images/s count source images, each giving two views. Ratios compare figures taken in one run on one machine.",
             "A device without rows was not measured (GPU rows come from running `simclr bench` on a CUDA machine).",
             ""]
    for benchmark, (title, columns) in _TABLES.items():
        selected = [row for row in rows if row["benchmark"] == benchmark]
        if not selected:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in selected:
            lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + " |")
        lines.append("")
    lines.append(f"Last written with torch {torch.__version__}, Python {platform.python_version()}.")
    return "\n".join(lines) + "\n"

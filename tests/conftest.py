"""Shared fixtures: a tiny labelled image folder generated on the fly."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TINY_ARGS = [
    "--arch", "resnet18", "--width", "0.125", "--batch-size", "8", "--epochs", "2",
    "--workers", "0", "--knn-every", "0", "--seed", "3", "--set", "train.log_every=1",
    "--set", "optim.warmup_epochs=1",
]


def make_image_folder(root: Path, classes: int = 2, per_class: int = 12, size: int = 16) -> Path:
    """PATH/<class>/img_k.png with a class-dependent colour and noise, so classes are separable."""
    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        base = np.zeros((size, size, 3))
        base[..., label % 3] = 200
        for k in range(per_class):
            pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img_{k}.png")
    return root


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def one_thread():
    # Small tensors: on a shared, busy machine two OpenMP threads mostly wait for each other.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

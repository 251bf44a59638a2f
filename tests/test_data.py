"""Tests for simclr.data: mnist5k, torchvision wrappers, and load_data name/path errors."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from _images import save_image as _save
from _images import solid_rgb as _rgb
from torch.utils.data import DataLoader

from simclr.data import BUILTIN, TORCHVISION, DataSplits, load_data
from simclr.data.vision import from_chw, from_hwc
from simclr.errors import SimCLRError


# ---------------------------------------------------------------- mnist5k


@pytest.fixture(scope="module")
def mnist() -> DataSplits:
    return load_data("mnist5k")


def test_mnist5k_sizes_and_classes(mnist: DataSplits) -> None:
    assert mnist.name == "mnist5k" and "mnist5k" in BUILTIN
    assert len(mnist.train) == 4000 and len(mnist.test) == 1000
    assert mnist.pretrain is mnist.train
    assert mnist.num_classes == 10 and mnist.classes == [str(d) for d in range(10)]
    assert mnist.image_size == 28
    assert Counter(mnist.train.labels.tolist()) == {c: 400 for c in range(10)}
    assert Counter(mnist.test.labels.tolist()) == {c: 100 for c in range(10)}


def test_mnist5k_items(mnist: DataSplits) -> None:
    for ds in (mnist.train, mnist.test):
        for i in (0, len(ds) // 2, len(ds) - 1):
            image, label = ds[i]
            assert image.dtype == torch.uint8 and image.shape == (3, 28, 28)
            assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
            assert image.max() > 0  # a digit, not an empty canvas
            assert isinstance(label, int) and 0 <= label <= 9


def test_mnist5k_item_is_a_copy(mnist: DataSplits) -> None:
    image, _ = mnist.train[0]
    image.zero_()
    assert mnist.train[0][0].max() > 0


def test_mnist5k_split_is_fixed_and_disjoint(mnist: DataSplits) -> None:
    other = load_data("MNIST5K", seed=123)
    assert torch.equal(other.train.images, mnist.train.images)
    assert torch.equal(other.test.labels, mnist.test.labels)
    train_rows = {bytes(r.numpy().tobytes()) for r in mnist.train.images[:, 0]}
    test_rows = {bytes(r.numpy().tobytes()) for r in mnist.test.images[:, 0]}
    assert len(train_rows) == 4000 and len(test_rows) == 1000
    assert not train_rows & test_rows


def test_mnist5k_batches(mnist: DataSplits) -> None:
    images, labels = next(iter(DataLoader(mnist.test, batch_size=8)))
    assert images.shape == (8, 3, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64


# ---------------------------------------------------------------- errors


def test_missing_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(SimCLRError, match="does not exist") as info:
        load_data(missing)
    assert missing in str(info.value)


def test_path_is_a_file(tmp_path: Path) -> None:
    path = _save(tmp_path / "x.png", _rgb((0, 0, 0)))
    with pytest.raises(SimCLRError, match="not a directory"):
        load_data(str(path))


def test_unknown_name() -> None:
    with pytest.raises(SimCLRError, match="not a built-in dataset") as info:
        load_data("imagenet-21k")
    message = str(info.value)
    assert "imagenet-21k" in message and "mnist5k" in message and "cifar10" in message


def test_cifar10_missing_without_download(tmp_path: Path) -> None:
    assert "cifar10" in TORCHVISION
    with pytest.raises(SimCLRError, match="--download") as info:
        load_data("CIFAR10", root=str(tmp_path / "empty"), download=False)
    assert "cifar10" in str(info.value) and str(tmp_path / "empty") in str(info.value)


# ---------------------------------------------------------------- torchvision wrappers


def test_torchvision_array_wrappers() -> None:
    hwc = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    hwc[1, 2, 3] = (10, 20, 30)
    ds = from_hwc(hwc, [0, 1, 2, 3])
    image, label = ds[1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8 and label == 1
    assert image[:, 2, 3].tolist() == [10, 20, 30]
    chw = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    ds = from_chw(chw, np.array([-1, 5]))
    image, label = ds[0]
    assert label == -1 and torch.equal(image, torch.from_numpy(chw[0]))

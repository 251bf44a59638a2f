"""CIFAR-10/100 and STL-10 through torchvision, exposed as uint8 tensor datasets.

torchvision already holds these as numpy arrays, so we wrap the arrays directly
instead of paying a PIL round-trip per item.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from simclr.data.datasets import DataSplits, TensorImages
from simclr.errors import SimCLRError

# name -> (image_size, mean, std); mean/std are per-pixel RGB statistics of the
# training images (the CIFAR std values are the true ones, not the 0.2023/0.1994/
# 0.2010 figures that circulate from an old per-image computation).
_META: dict[str, tuple[int, tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": (32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": (32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": (96, (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
}
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _open(name: str, root: str, download: bool, make: Callable[[bool], Any]) -> Any:
    """Call ``make(download)``, translating torchvision failures into SimCLRError."""
    try:
        return make(download)
    except RuntimeError as exc:
        if not download:
            raise SimCLRError(
                f"{name} not found under {root}; pass --download (needs internet) or --data-root pointing to it"
            ) from exc
        raise SimCLRError(f"cannot prepare {name} under {root}: {' '.join(str(exc).split())}") from exc
    except Exception as exc:  # noqa: BLE001 - network/permission/corrupt-pickle errors
        action = "download" if download else "load"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SimCLRError(f"cannot {action} {name} under {root}: {reason}") from exc


def from_hwc(data: np.ndarray, labels: Any) -> TensorImages:
    """uint8 [N, H, W, 3] array (CIFAR layout) -> TensorImages with [N, 3, H, W] storage."""
    images = torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2).contiguous()
    return TensorImages(images, torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def from_chw(data: np.ndarray, labels: Any) -> TensorImages:
    """uint8 [N, 3, H, W] array (STL-10 layout) -> TensorImages, sharing memory."""
    # STL-10 train+unlabeled is ~2.9 GB: avoid any copy.
    images = torch.from_numpy(np.ascontiguousarray(data))
    return TensorImages(images, torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def _cifar(name: str, root: str, download: bool) -> tuple[TensorImages, TensorImages, list[str]]:
    from torchvision import datasets  # heavy import, only when needed

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    train = _open(name, root, download, lambda d: cls(root, train=True, download=d))
    # Once the train split is there the archive is on disk; never re-download.
    test = _open(name, root, False, lambda d: cls(root, train=False, download=d))
    return from_hwc(train.data, train.targets), from_hwc(test.data, test.targets), list(train.classes)


def _stl10(root: str, download: bool) -> tuple[TensorImages, TensorImages, TensorImages, list[str]]:
    from torchvision import datasets

    # torchvision labels the unlabeled part -1, matching our convention.
    pre = _open("stl10", root, download, lambda d: datasets.STL10(root, split="train+unlabeled", download=d))
    train = _open("stl10", root, False, lambda d: datasets.STL10(root, split="train", download=d))
    test = _open("stl10", root, False, lambda d: datasets.STL10(root, split="test", download=d))
    classes = list(getattr(train, "classes", None) or STL10_CLASSES)
    wrap = [from_chw(ds.data, ds.labels) for ds in (pre, train, test)]
    return wrap[0], wrap[1], wrap[2], classes


def load_torchvision(name: str, root: str, download: bool) -> DataSplits:
    """``name`` in ("cifar10", "cifar100", "stl10"), lower-case.

    Raises:
        SimCLRError: files missing and ``download`` is False, or download failed.
    """
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    size, mean, std = _META[name]
    if name == "stl10":
        pretrain, train, test, classes = _stl10(root, download)
    else:
        train, test, classes = _cifar(name, root, download)
        pretrain = train
    return DataSplits(
        name=name,
        pretrain=pretrain,
        train=train,
        test=test,
        num_classes=len(classes),
        classes=classes,
        image_size=size,
        mean=mean,
        std=std,
    )

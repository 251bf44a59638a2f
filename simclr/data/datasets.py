"""Dataset containers shared by every data source, and the ``DataSplits`` record.

Every item is ``(image, label)``: image a uint8 tensor [3, H, W] in RGB, label a
Python int (-1 for unlabeled items).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from simclr.data.images import load_crops, load_image, read_header, upright_size
from simclr.errors import SimCLRError


class TensorImages(Dataset):
    """Images already decoded into one uint8 tensor (MNIST, CIFAR, STL-10).

    Attributes:
        images: uint8 [N, 3, H, W], contiguous.
        labels: int64 [N]; -1 marks unlabeled items.
        paths: the file of each item when a folder was decoded into memory
            (``simclr.data.memory``), else None.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int],
                 paths: Sequence[str] | None = None) -> None:
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N,3,H,W], got {images.dtype} {tuple(images.shape)}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        if paths is not None and len(paths) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(paths)} paths")
        self.images = images
        self.labels = labels
        self.paths = list(paths) if paths is not None else None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        # Clone so an in-place transform downstream cannot corrupt the stored data.
        return self.images[index].clone(), int(self.labels[index])


class ImageFiles(Dataset):
    """Images decoded from files on every access (folder datasets).

    Attributes:
        paths: file paths, in item order.
        labels: int64 [N]; -1 marks unlabeled items.
        error_hint: appended to the message of an unreadable file (what the user can do).
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike[str]], labels: Sequence[int] | None = None, error_hint: str = ""
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.error_hint = error_hint
        if labels is None:
            labels = [-1] * len(self.paths)
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64).reshape(-1)
        if len(self.paths) != self.labels.shape[0]:
            raise ValueError(f"{len(self.paths)} paths but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Returns (uint8 [3, H, W], label); raises SimCLRError for unreadable files."""
        with self._hinted():
            return load_image(self.paths[index]), int(self.labels[index])

    def load_crops(self, index: int, boxes_for: Callable[[int, int], np.ndarray], size: int) -> torch.Tensor:
        """Item ``index``'s crops resized to ``size`` (``simclr.data.images.load_crops``): uint8 [V, 3, size, size]."""
        with self._hinted():
            return load_crops(self.paths[index], boxes_for, size)

    def upright_size(self, index: int) -> tuple[int, int]:
        """(height, width) of item ``index`` as shown, from its header (``simclr.data.images.upright_size``)."""
        with self._hinted():
            return upright_size(self.paths[index])

    def read_header(self, index: int) -> tuple[int, int, bool]:
        """``simclr.data.images.read_header`` of item ``index``: height, width, plain JPEG."""
        with self._hinted():
            return read_header(self.paths[index])

    @contextmanager
    def _hinted(self) -> Iterator[None]:
        try:
            yield
        except SimCLRError as error:
            if not self.error_hint:
                raise
            raise SimCLRError(f"{error}{self.error_hint}") from error

    def without(self, paths: set[str]) -> ImageFiles:
        """A copy leaving out the items whose path is in ``paths``."""
        keep = [i for i, path in enumerate(self.paths) if path not in paths]
        return ImageFiles([self.paths[i] for i in keep], self.labels[keep].tolist(), self.error_hint)


@dataclass
class DataSplits:
    """Everything the trainer and evaluators need to know about one data source.

    ``pretrain`` is what SimCLR trains on (labels may be -1 and are ignored by the
    loss); ``train``/``test`` are labelled evaluation splits, None when unlabeled.
    ``mean``/``std`` are per-channel RGB statistics in [0, 1] units. ``skipped`` lists the
    files left out as unreadable (``skip_bad_images``), as (path, reason), sorted by path.
    """

    name: str
    pretrain: Dataset
    train: Dataset | None
    test: Dataset | None
    num_classes: int
    classes: list[str] = field(default_factory=list)
    image_size: int = 32
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    skipped: list[tuple[str, str]] = field(default_factory=list)

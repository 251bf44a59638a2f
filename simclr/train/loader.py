"""Batches of two views for pretraining, reproducible whatever the number of workers.

A sample's views depend only on (run seed, epoch, sample index): the dataset seeds one
generator per item with ``view_seed``, and the sampler's order depends only on (seed, epoch).
A sampler can start mid-epoch, so a resumed run sees exactly the batches it would have seen.

Two pipelines give the same views (same parameters per seed, rendering equal to float
rounding): ``per_image`` augments in loader workers; ``batched`` ships uint8 images and
augments the whole batch on the training device (:class:`PretrainBatches`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from simclr.augment import BatchedTwoViewTransform, TwoViewTransform, view_seed
from simclr.data import TensorImages


class TwoViewDataset(Dataset):
    """Wraps a dataset of (uint8 image [3,H,W], label) into (view_a, view_b, label, index)."""

    def __init__(self, base: Dataset, transform: TwoViewTransform, seed: int) -> None:
        self.base = base
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int, int]:
        image, label = self.base[index]
        view_a, view_b = self.transform(image, view_seed(self.seed, self.epoch, index))
        return view_a, view_b, int(label), index


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, truncated to whole batches, optionally started mid-epoch.

    ``num_replicas``/``rank`` give each process a disjoint, interleaved shard of every
    global batch (rank r takes positions r, r+R, … of it), so the union over ranks of one
    step is exactly the single-process global batch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        epoch: int = 0,
        start_step: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.start_step = epoch, start_step
        self.num_replicas, self.rank = num_replicas, rank

    @property
    def steps_per_epoch(self) -> int:
        return self.size // self.batch_size

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.batch_size // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        # index = size is never a sample index, so the order seed never equals a view seed.
        generator = torch.Generator().manual_seed(view_seed(self.seed, self.epoch, self.size))
        order = torch.randperm(self.size, generator=generator)
        used = order[self.start_step * self.batch_size : self.steps_per_epoch * self.batch_size]
        return iter(used[self.rank :: self.num_replicas].tolist())


def default_workers(processes_per_machine: int = 1) -> int:
    """Loader processes per training process: the cores left after one per training process, at most 8."""
    cores = os.cpu_count() or 1
    return max(0, min(8, (cores - processes_per_machine) // processes_per_machine))


def make_loader(
    dataset: Dataset, sampler: EpochSampler, workers: int, pin_memory: bool
) -> DataLoader:
    """A loader over ``sampler``'s indices in per-rank batches of ``batch_size // num_replicas``."""
    return DataLoader(
        dataset,
        batch_size=sampler.batch_size // sampler.num_replicas,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=False,  # workers must see the dataset's new epoch each time
    )


class _IndexedImages(Dataset):
    """(uint8 image [3,H,W], label, index) items, for augmenting on the device afterwards."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        image, label = self.base[index]
        return image, int(label), index


def use_batched_pipeline(pipeline: str, base: Dataset) -> bool:
    """``auto`` picks batched augmentation when every image has one size (decoded tensor datasets)."""
    return pipeline == "batched" or (pipeline == "auto" and isinstance(base, TensorImages))


class PretrainBatches:
    """This process's (view_a, view_b, labels) batches of an epoch, from either pipeline.

    Batched: images already in memory are indexed directly; files are decoded by loader
    workers into uint8 batches (all images one size). The views are then drawn on ``device``.
    """

    def __init__(self, dataset: TwoViewDataset, batched: bool, workers: int, device: torch.device) -> None:
        self.dataset, self.workers, self.device = dataset, workers, device
        self.batched = BatchedTwoViewTransform(dataset.transform.view_a, dataset.transform.view_b) if batched else None

    def epoch(self, sampler: EpochSampler) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        pin = self.device.type == "cuda"
        self.dataset.epoch = sampler.epoch
        if self.batched is None:
            for view_a, view_b, labels, _ in make_loader(self.dataset, sampler, self.workers, pin):
                yield view_a, view_b, labels
            return
        base = self.dataset.base
        if isinstance(base, TensorImages):
            indices = torch.tensor(list(sampler), dtype=torch.long)
            per_step = sampler.batch_size // sampler.num_replicas
            batches = ((base.images[chunk], base.labels[chunk], chunk) for chunk in indices.split(per_step))
        else:
            batches = iter(make_loader(_IndexedImages(base), sampler, self.workers, pin))
        for images, labels, chunk in batches:
            if pin:
                images = images.pin_memory()
            seeds = [view_seed(self.dataset.seed, sampler.epoch, int(i)) for i in chunk]
            view_a, view_b = self.batched(images.to(self.device, non_blocking=True), seeds)
            yield view_a, view_b, labels

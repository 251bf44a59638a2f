"""The order samples are seen in: a seeded permutation per epoch, and a whole run of steps.

A run is addressed by its step: step s reads positions ``(s mod S) * B ... + B`` of epoch
``s // S``'s permutation (S steps of B samples per epoch, the remainder left out). The
sampler yields global sample keys ``(epoch, index)``, so datasets need no epoch state
and one set of loader workers serves the whole run; starting at any step resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from simclr.augment.keys import order_seed
from simclr.errors import SimCLRError


def epoch_order(size: int, seed: int, epoch: int) -> Tensor:
    """int64 [size]: the permutation of ``range(size)`` that epoch ``epoch`` of run ``seed`` reads."""
    generator = torch.Generator().manual_seed(order_seed(seed, epoch))
    return torch.randperm(size, generator=generator)


class RunSampler(Sampler[tuple[int, int]]):
    """``(epoch, index)`` of every sample this process reads in steps ``start_step .. stop_step - 1``.

    ``batch_size`` is the global batch; with ``num_replicas`` processes, rank r takes
    positions r, r+R, … of each global batch (disjoint, interleaved shards whose union is
    the one-process batch), i.e. ``batch_size // num_replicas`` keys per step.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, stop_step: int,
                 num_replicas: int = 1, rank: int = 0) -> None:
        if batch_size % num_replicas or not 0 <= rank < num_replicas:
            raise SimCLRError(f"the global batch {batch_size} must split evenly over {num_replicas} processes (rank {rank})")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.stop_step = start_step, stop_step
        self.num_replicas, self.rank = num_replicas, rank

    @property
    def steps_per_epoch(self) -> int:
        return self.size // self.batch_size

    @property
    def per_rank(self) -> int:
        """Keys per step on this process."""
        return self.batch_size // self.num_replicas

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step) * self.per_rank

    def steps(self) -> Iterator[tuple[int, Tensor]]:
        """(epoch, int64 [per_rank] sample indices) of each step in turn."""
        order, order_epoch = None, -1
        for step in range(self.start_step, self.stop_step):
            epoch, offset = divmod(step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(self.size, self.seed, epoch), epoch
            batch = order[offset * self.batch_size : (offset + 1) * self.batch_size]  # type: ignore[index]
            yield epoch, batch[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for epoch, indices in self.steps():
            yield from ((epoch, index) for index in indices.tolist())

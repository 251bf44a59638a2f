"""Per-sample seeds, so a sample's views depend only on (run seed, epoch, sample index).

Seeding per sample rather than per worker is what makes augmentations identical no
matter how many loader workers or GPUs share the data.
"""

from __future__ import annotations

import numpy as np
import torch

from simclr.augment._checks import check_int_at_least
from simclr.errors import SimCLRError

_MASK_63 = (1 << 63) - 1


def view_seed(run_seed: int, epoch: int, index: int) -> int:
    """Mix (run_seed, epoch, index), each an int >= 0, into one int in [0, 2**63).

    SeedSequence hashes its entropy words, so neighbouring indices or epochs give
    unrelated seeds (unlike e.g. ``run_seed + index``, which collides across epochs).
    """
    words = [
        check_int_at_least("run_seed", _as_int(run_seed), 0),
        check_int_at_least("epoch", _as_int(epoch), 0),
        check_int_at_least("index", _as_int(index), 0),
    ]
    lo, hi = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32).tolist()
    return ((int(hi) << 32) | int(lo)) & _MASK_63


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (an int in [0, 2**64))."""
    seed = check_int_at_least("seed", _as_int(seed), 0)
    if seed >= 1 << 64:
        raise SimCLRError(f"seed must be an integer in [0, 2**64), got {seed}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def _as_int(value: object) -> object:
    # Accept numpy integers (e.g. indices from a sampler) as plain ints.
    return int(value) if isinstance(value, np.integer) else value

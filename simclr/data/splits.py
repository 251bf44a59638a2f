"""Seeded, class-stratified index splits.

Both helpers work on plain label sequences so they serve any dataset (tensor-backed
or file-backed) and return sorted Python ``int`` indices, ready for ``Subset``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simclr.errors import SimCLRError


def check_fraction(value: float, option: str, allow_one: bool = False) -> float:
    """Return ``value`` as a float if it lies in (0, 1) (or (0, 1] with ``allow_one``).

    ``option`` is the name shown to the user, e.g. ``"valid_size"``.
    """
    upper = "1]" if allow_one else "1)"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise SimCLRError(f"{option} must be a number in (0, {upper}, got {value!r}")
    value = float(value)
    # ``not (a < v < b)`` also rejects NaN
    if not (0.0 < value < 1.0 or (allow_one and value == 1.0)):
        raise SimCLRError(f"{option} must be in (0, {upper}, got {value}")
    return value


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimCLRError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def _groups(labels: Sequence[int]) -> list[np.ndarray]:
    """Indices of each class, classes in ascending label order, indices ascending.

    argsort + split is O(N log N); a mask per class would be O(N * classes).
    """
    arr = np.asarray(labels, dtype=np.int64).reshape(-1)
    if arr.size == 0:
        return []
    order = np.argsort(arr, kind="stable")
    _, starts = np.unique(arr[order], return_index=True)
    return np.split(order, starts[1:])


def _round(x: float) -> int:
    # Round half up: Python's round() is banker's rounding, which would make
    # 2.5 -> 2 but 3.5 -> 4 and surprise anyone checking counts by hand.
    return int(math.floor(x + 0.5))


def stratified_split(
    labels: Sequence[int], test_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split indices into (train, test) keeping class proportions.

    Each class with n items sends ``round(n * test_fraction)`` to test, clamped so
    that a class with >= 2 items has at least 1 test and 1 train item; a class
    with a single item stays in train. Same labels + seed -> same split.

    Args:
        labels: class id per item (any ints; each distinct value is a class).
        test_fraction: in (0, 1).
        seed: non-negative int.

    Returns:
        (train_indices, test_indices), disjoint, each sorted ascending.
    """
    fraction = check_fraction(test_fraction, "test_fraction")
    rng = _rng(seed)
    train: list[int] = []
    test: list[int] = []
    for members in _groups(labels):
        n = len(members)
        shuffled = members[rng.permutation(n)]
        k = 0 if n < 2 else min(max(_round(n * fraction), 1), n - 1)
        test.extend(shuffled[:k].tolist())
        train.extend(shuffled[k:].tolist())
    return sorted(train), sorted(test)


def balanced_subset(labels: Sequence[int], fraction: float, seed: int) -> list[int]:
    """Pick exactly ``max(1, round_half_up(n_c * fraction))`` items from every class c.

    Used for the 1% / 10% label fine-tuning protocols: every class keeps its share
    (mnist5k's 400 training digits per class give 4 at 1 %, 40 at 10 %). The per-class
    shuffle does not depend on ``fraction``, so for one seed a smaller fraction's subset
    is contained in a larger one's (1% subset is inside the 10% subset).

    Args:
        labels: class id per item, each >= 0 (unlabelled items, -1, cannot be chosen).
        fraction: in (0, 1].
        seed: non-negative int.

    Returns:
        Sorted indices.
    """
    frac = check_fraction(fraction, "fraction", allow_one=True)
    rng = _rng(seed)
    if np.any(np.asarray(labels, dtype=np.int64) < 0):
        raise SimCLRError("balanced_subset needs labelled items (labels >= 0); unlabelled items (-1) cannot be chosen")
    chosen: list[int] = []
    for members in _groups(labels):
        n = len(members)
        shuffled = members[rng.permutation(n)]
        k = min(n, max(1, _round(n * frac)))
        chosen.extend(shuffled[:k].tolist())
    return sorted(chosen)

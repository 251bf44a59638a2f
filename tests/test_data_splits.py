"""Tests for simclr.data.splits: stratified_split and balanced_subset."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from simclr.data import balanced_subset, stratified_split
from simclr.errors import SimCLRError

# ---------------------------------------------------------------- splits

_LABELS = [0] * 50 + [1] * 30 + [2] * 7 + [3] * 1 + [4] * 2


def test_stratified_split_counts_and_disjoint() -> None:
    labels = list(np.random.default_rng(1).permutation(_LABELS))  # interleaved classes
    train, test = stratified_split(labels, 0.2, seed=0)
    assert Counter(labels[i] for i in test) == {0: 10, 1: 6, 2: 1, 4: 1}
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(len(labels)))
    assert train == sorted(train) and test == sorted(test)


def test_stratified_split_deterministic() -> None:
    assert stratified_split(_LABELS, 0.3, 7) == stratified_split(_LABELS, 0.3, 7)
    assert stratified_split(_LABELS, 0.3, 7) != stratified_split(_LABELS, 0.3, 8)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -1, 2])
def test_stratified_split_bad_fraction(fraction: float) -> None:
    with pytest.raises(SimCLRError, match="test_fraction"):
        stratified_split(_LABELS, fraction, 0)


def test_balanced_subset_counts() -> None:
    chosen = balanced_subset(_LABELS, 0.1, seed=0)
    assert Counter(_LABELS[i] for i in chosen) == {0: 5, 1: 3, 2: 1, 3: 1, 4: 1}
    assert len(set(chosen)) == len(chosen) and chosen == sorted(chosen)
    assert balanced_subset(_LABELS, 1.0, seed=0) == list(range(len(_LABELS)))
    big = Counter(_LABELS[i] for i in balanced_subset(_LABELS, 0.5, seed=0))
    assert big == {c: max(1, math.floor(n * 0.5 + 0.5)) for c, n in Counter(_LABELS).items()}


def test_balanced_subset_deterministic_and_nested() -> None:
    small = balanced_subset(_LABELS, 0.1, seed=3)
    assert small == balanced_subset(_LABELS, 0.1, seed=3)
    assert small != balanced_subset(_LABELS, 0.1, seed=4)
    assert set(small) <= set(balanced_subset(_LABELS, 0.5, seed=3))
    with pytest.raises(SimCLRError, match="fraction"):
        balanced_subset(_LABELS, 0.0, seed=0)

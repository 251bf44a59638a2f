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


def test_balanced_subset_exact_counts_on_mnist5k_shaped_labels() -> None:
    """400 training digits per class (mnist5k): 1 % -> 4, 10 % -> 40, 100 % -> 400 of every class."""
    labels = list(np.random.default_rng(2).permutation(np.repeat(np.arange(10), 400)))
    for fraction, per_class in [(0.01, 4), (0.1, 40), (1.0, 400)]:
        chosen = balanced_subset(labels, fraction, seed=0)
        assert Counter(labels[i] for i in chosen) == {c: per_class for c in range(10)}
    assert balanced_subset(labels, 0.01, seed=0) == balanced_subset(labels, 0.01, seed=0)
    assert balanced_subset(labels, 0.01, seed=0) != balanced_subset(labels, 0.01, seed=1)


def test_balanced_subset_refuses_unlabelled_items() -> None:
    with pytest.raises(SimCLRError, match="labels >= 0"):
        balanced_subset([0, 1, -1, 1], 0.5, seed=0)


def test_labelled_subset_of_a_dataset_is_the_balanced_subset() -> None:
    import torch

    from simclr.data import TensorImages
    from simclr.evaluate.protocols import labelled_subset

    labels = list(np.random.default_rng(3).integers(0, 3, size=60))
    dataset = TensorImages(torch.zeros(60, 3, 2, 2, dtype=torch.uint8), labels)
    subset = labelled_subset(dataset, 0.1, seed=4)
    assert subset.indices == balanced_subset(labels, 0.1, seed=4)
    assert [dataset[i][1] for i in subset.indices] == [subset[k][1] for k in range(len(subset))]

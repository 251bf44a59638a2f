"""simclr.augment.keys: sample keys and their draws, checked against a pure-Python SplitMix64
written here from the published algorithm (Steele et al. 2014; Vigna's splitmix64.c), and
ViewTransform.sample's documented slot layout read from that reference stream."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from simclr.augment import ViewTransform, sample_key, sample_keys
from simclr.augment.keys import as_keys, order_seed, uniforms
from simclr.errors import SimCLRError

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1, M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
SLOTS = 64  # draws reserved per view


# ---------------------------------------------------------------- the pure-Python reference


def mix(z: int) -> int:
    """SplitMix64's output function on a Python int."""
    z = ((z ^ (z >> 30)) * M1) & MASK
    z = ((z ^ (z >> 27)) * M2) & MASK
    return z ^ (z >> 31)


def unmix(z: int) -> int:
    """The inverse of ``mix``: undo each xorshift and multiply, last first."""
    z = z ^ (z >> 31) ^ (z >> 62)
    z = (z * pow(M2, -1, 1 << 64)) & MASK
    z = z ^ (z >> 27) ^ (z >> 54)
    z = (z * pow(M1, -1, 1 << 64)) & MASK
    return z ^ (z >> 30) ^ (z >> 60)


def splitmix64(state: int, n: int) -> list[int]:
    """The first ``n`` outputs of SplitMix64 seeded with ``state``."""
    out = []
    for _ in range(n):
        state = (state + GOLDEN) & MASK
        out.append(mix(state))
    return out


def ref_key(seed: int, epoch: int, index: int) -> int:
    return mix(((epoch << 40) | index) ^ mix(seed))


def ref_draws(key: int, view: int) -> list[float]:
    """The 64 draws of ``view``: outputs view*64+1 .. view*64+64 of the key's stream, top 53 bits."""
    words = splitmix64(key, SLOTS * (view + 1))[SLOTS * view :]
    return [(w >> 11) * 2.0**-53 for w in words]


def test_reference_is_splitmix64() -> None:
    # The published first outputs of SplitMix64 seeded with 0, so the reference is the real thing.
    assert splitmix64(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    rng = np.random.default_rng(0)
    for x in [0, 1, MASK, GOLDEN, *map(int, rng.integers(0, 2**64, 200, dtype=np.uint64))]:
        assert unmix(mix(x)) == x and mix(unmix(x)) == x


# ---------------------------------------------------------------- keys: values


SEEDS = [0, 1, 12345, 2**32 + 7, 2**63 - 1, 2**63 + 5, 2**64 - 1]
EPOCHS = [0, 1, 7, 300, 2**24 - 1]
INDICES = [0, 1, 2, 999, 1_281_166, 2**32, 2**40 - 1]


def test_keys_match_reference() -> None:
    for seed, epoch in product(SEEDS, EPOCHS):
        keys = sample_keys(seed, epoch, np.array(INDICES))
        assert keys.dtype == np.uint64 and keys.shape == (len(INDICES),)
        assert keys.tolist() == [ref_key(seed, epoch, i) for i in INDICES]
        for index in INDICES[:3]:
            key = sample_key(seed, epoch, index)
            assert type(key) is int and key == ref_key(seed, epoch, index)
    # Epochs and indices broadcast; numpy scalars, lists and ranges are accepted.
    grid = sample_keys(3, np.array(EPOCHS)[:, None], np.array(INDICES)[None, :])
    assert grid.shape == (len(EPOCHS), len(INDICES))
    assert grid.tolist() == [[ref_key(3, e, i) for i in INDICES] for e in EPOCHS]
    assert sample_keys(np.uint64(2**64 - 1), np.int32(4), [5, 6]).tolist() == [
        ref_key(2**64 - 1, 4, 5), ref_key(2**64 - 1, 4, 6)]  # fmt: skip
    assert sample_keys(9, 2, range(3)).tolist() == [ref_key(9, 2, i) for i in range(3)]
    assert sample_keys(9, 2, 5).shape == (1,)
    assert sample_keys(9, 2, []).shape == (0,)


def test_uniforms_match_reference() -> None:
    keys = [0, 1, 2**63, MASK, GOLDEN, ref_key(0, 0, 0), ref_key(5, 3, 17)]
    for view in (0, 1, 2):
        u = uniforms(np.array(keys, dtype=np.uint64), view, 0, SLOTS)
        assert u.dtype == np.float64 and u.shape == (len(keys), SLOTS)
        assert u.tolist() == [ref_draws(k, view) for k in keys]
        np.testing.assert_array_equal(uniforms(np.array(keys, dtype=np.uint64), view, 40, 14), u[:, 40:54])
    assert uniforms(np.array([], dtype=np.uint64), 0, 0, 3).shape == (0, 3)


# ---------------------------------------------------------------- keys: distinct


def _all_distinct(keys: np.ndarray) -> bool:
    ordered = np.sort(keys)  # (np.unique is several times slower on uint64)
    return bool((ordered[1:] != ordered[:-1]).all())


def test_keys_distinct_over_a_large_grid() -> None:
    epochs, indices = np.arange(2000), np.arange(2000)
    keys = sample_keys(0, epochs[:, None], indices[None, :]).ravel()
    assert keys.size == 4_000_000 and _all_distinct(keys)
    # Near the limits of both fields too (where a naive packing would overlap).
    keys = sample_keys(7, (2**24 - 1) - np.arange(300)[:, None], (2**40 - 1) - np.arange(300)[None, :])
    assert keys.size == 90_000 and _all_distinct(keys.ravel())


def test_key_determines_epoch_and_index() -> None:
    # The bijection itself: inverting mix recovers (epoch, index), so no two samples of a
    # run can ever share a key, for every epoch < 2**24 and index < 2**40.
    rng = np.random.default_rng(1)
    epochs = [0, 2**24 - 1, *map(int, rng.integers(0, 2**24, 50))]
    indices = [0, 2**40 - 1, *map(int, rng.integers(0, 2**40, 50))]
    for seed in (0, 2**64 - 1, 42):
        for epoch, index in zip(epochs, indices):
            counter = unmix(sample_key(seed, epoch, index)) ^ mix(seed)
            assert (counter >> 40, counter & (2**40 - 1)) == (epoch, index)


def test_different_seeds_give_different_keys() -> None:
    one = [sample_key(s, 4, 5) for s in range(10_000)]
    assert len(set(one)) == 10_000
    grid = np.arange(1000)
    a = sample_keys(0, grid[:, None], grid[None, :]).ravel()
    b = sample_keys(1, grid[:, None], grid[None, :]).ravel()
    assert _all_distinct(np.concatenate([a, b]))
    # The three inputs are not interchangeable.
    assert len({sample_key(3, 4, 5), sample_key(5, 4, 3), sample_key(4, 3, 5), sample_key(3, 5, 4)}) == 4


# ---------------------------------------------------------------- keys: bad input


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 0), "seed"), ((2**64, 0, 0), "seed"), ((1.0, 0, 0), "seed"),
        ((True, 0, 0), "seed"), (("3", 0, 0), "seed"), ((None, 0, 0), "seed"),
        ((0, 0, -1), "sample indices"), ((0, 0, 2**40), "sample indices"),
        ((0, 0, [3, -2]), "sample indices"),
        ((0, -1, 0), "epochs"), ((0, 2**24, 0), "epochs"), ((0, [0, 2**24], 0), "epochs"),
    ],
)  # fmt: skip
def test_bad_seed_epoch_index_raise_one_line(args: tuple, match: str) -> None:
    with pytest.raises(SimCLRError, match=match) as info:
        sample_keys(*args)
    assert "\n" not in str(info.value)
    with pytest.raises(SimCLRError, match=match):
        sample_key(*args)


@pytest.mark.parametrize(
    "args",
    [(0, 0, 1.5), (0, 0.5, 1), (0, 0, True), (0, 0, np.array([2.7])), (0, 0, 2**63), (0, 0, 2**64),
     (0, 0, "3"), (0, None, 1), (0, [0, 1], [0, 1, 2])],
)  # fmt: skip
def test_non_integer_epoch_index_raise_simclr_error(args: tuple) -> None:
    try:
        sample_keys(*args)
    except SimCLRError:
        return
    raise AssertionError(f"sample_keys{args} raised no SimCLRError")


def test_as_keys_accepts_integers_and_rejects_the_rest() -> None:
    import torch

    for keys in ([1, 2], (1, 2), np.array([1, 2], dtype=np.int32), np.array([1, 2], dtype=np.uint64),
                 torch.tensor([1, 2]), range(1, 3)):  # fmt: skip
        out = as_keys(keys)
        assert out.dtype == np.uint64 and out.tolist() == [1, 2]
    assert as_keys(7).tolist() == [7] and as_keys([2**64 - 1]).tolist() == [2**64 - 1]
    assert as_keys([]).shape == (0,)
    for bad in ([-1], [2**64], 2**64, [1.5], np.array([1.0]), [True, 1], torch.tensor([True]),
                torch.tensor([-3]), "abc", None, [[1, 2]], (k for k in [1])):  # fmt: skip
        with pytest.raises(SimCLRError, match="keys must be integers") as info:
            as_keys(bad)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------- uniforms: statistics


def test_uniforms_range_mean_and_correlation() -> None:
    n = 40_000
    # Raw consecutive keys are the hard case for a weak mixer; sample keys the real one.
    for keys in (np.arange(n, dtype=np.uint64), sample_keys(0, 0, np.arange(n))):
        u = uniforms(keys, 0, 0, 54)
        v = uniforms(keys, 1, 0, 54)
        assert 0.0 <= u.min() and u.max() < 1.0
        se = math.sqrt(1 / 12 / n)
        assert np.abs(u.mean(axis=0) - 0.5).max() < 4.5 * se
        assert np.abs(u.var(axis=0) - 1 / 12).max() < 4.5 * math.sqrt(1 / 180 / n)
        bins = np.stack([np.bincount((u[:, s] * 16).astype(int), minlength=16) for s in range(54)])
        assert np.abs(bins - n / 16).max() < 4.5 * math.sqrt(n / 16 * 15 / 16)
        limit = 4.5 / math.sqrt(n)
        slots = np.corrcoef(u.T)[np.triu_indices(54, 1)]  # slot vs slot of one key
        assert np.abs(slots).max() < limit
        neighbours = [np.corrcoef(u[:-1, s], u[1:, s])[0, 1] for s in range(54)]  # key k vs k + 1
        assert np.abs(neighbours).max() < limit
        views = [np.corrcoef(u[:, s], v[:, s])[0, 1] for s in range(54)]  # view 0 vs view 1
        assert np.abs(views).max() < limit
    # Extreme keys still give draws in [0, 1), never exactly 1.
    edge = uniforms(np.array([0, 1, 2**63, MASK], dtype=np.uint64), 1, 0, SLOTS)
    assert 0.0 <= edge.min() and edge.max() < 1.0


def test_order_seed() -> None:
    seeds = {order_seed(s, e) for s in range(20) for e in range(50)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert order_seed(3, 4) == order_seed(3, 4)
    # Derived from the reserved index 2**40 - 1, which sample_keys also accepts: never a dataset's.
    assert order_seed(3, 4) == ref_key(3, 4, 2**40 - 1) >> 1


# ---------------------------------------------------------------- the sampler's slots


def ref_crop(u: list[float], height: int, width: int, scale: tuple, ratio: tuple) -> tuple:
    """torchvision's RandomResizedCrop.get_params on draws 0-39 (area, aspect, top, left) x 10."""
    for attempt in range(10):
        ua, ur, ut, ul = u[4 * attempt : 4 * attempt + 4]
        area = height * width * (scale[0] + (scale[1] - scale[0]) * ua)
        aspect = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * ur)
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return math.floor(ut * (height - h + 1)), math.floor(ul * (width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    h, w = min(max(h, 1), height), min(max(w, 1), width)
    return (height - h) // 2, (width - w) // 2, h, w


def ref_view(t: ViewTransform, key: int, view: int, height: int, width: int) -> dict:
    """Everything ViewTransform.sample draws for one key, from the reference stream."""
    u = ref_draws(key, view)
    color = u[41] < t.color_p
    s = t.color_strength
    lo, hi = max(0.0, 1.0 - 0.8 * s), 1.0 + 0.8 * s
    blur = u[51] < t.blur_p
    return {
        "crop": ref_crop(u, height, width, t.crop_scale, t.crop_ratio),
        "flip": u[40] < t.flip_p,
        "color_applied": color,
        "color_order": tuple(sorted(range(4), key=lambda i: u[42 + i])) if color else (0, 1, 2, 3),
        "brightness": lo + (hi - lo) * u[46] if color else 1.0,
        "contrast": lo + (hi - lo) * u[47] if color else 1.0,
        "saturation": lo + (hi - lo) * u[48] if color else 1.0,
        "hue": min(0.2 * s, 0.5) * (2 * u[49] - 1) if color else 0.0,
        "grayscale": u[50] < t.gray_p,
        "blur_applied": blur,
        "blur_sigma": t.blur_sigma[0] + (t.blur_sigma[1] - t.blur_sigma[0]) * u[52] if blur else 0.0,
        "solarize": u[53] < t.solarize_p,
    }


@pytest.mark.parametrize(
    ("view", "hw"),
    [
        (ViewTransform(32), (32, 32)),
        (ViewTransform(96, solarize_p=0.3, color_strength=2.0, blur_p=0.5), (100, 140)),
        (ViewTransform(16, crop_scale=(0.5, 1.0)), (1, 100)),  # every crop falls back
        (ViewTransform(16, crop_scale=(0.9, 1.0), color_p=0.5), (200, 40)),
        (ViewTransform(8, crop_ratio=(0.2, 5.0), blur_p=0.7, blur_sigma=(0.5, 3.0)), (3, 5)),
    ],
)  # fmt: skip
def test_sampler_matches_reference(view: ViewTransform, hw: tuple[int, int]) -> None:
    keys = sample_keys(11, 2, np.arange(150)).tolist() + [0, 2**63, MASK]
    for v in (0, 1):
        params = view.sample(keys, v, *hw)
        for row, key in enumerate(keys):
            expected = ref_view(view, key, v, *hw)
            got = {
                name: tuple(value[row].tolist()) if value.ndim == 2 else value[row].item()
                for name, value in vars(params).items()
            }
            assert got == expected, f"key {key}, view {v}"

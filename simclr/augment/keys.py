"""Counter-based randomness: every random number of a view is a pure function of its key.

A sample's key is ``mix64(counter ^ mix64(seed))`` with ``counter = epoch << 40 | index``:
``mix64`` (SplitMix64's finaliser) is a bijection of 64-bit words, so within one run two
different (epoch, index) pairs never share a key (for index < 2**40, epoch < 2**24). Draw
``slot`` of ``view`` is ``mix64(key + GOLDEN * (view * SLOTS + slot + 1))``, the SplitMix64
stream of the key read at a fixed position, as 53-bit floats in [0, 1).

Why SplitMix64 rather than torch's or numpy's generators: it is stateless (no generator
object per sample, nothing to seed from 32 bits, so no collisions at ImageNet scale), its
draws vectorise as a handful of uint64 numpy ops over a whole batch, and each op reads its
own fixed slots, so turning one op off leaves every other op's draws unchanged. Its output
passes BigCrush (Steele et al., OOPSLA 2014); the tests check every op's rates and ranges.
"""

from __future__ import annotations

import numpy as np

from simclr.errors import SimCLRError

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
SLOTS = 64  # draws reserved per view (a view uses 54)
INDEX_BITS, EPOCH_BITS = 40, 24
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays: a bijection that scrambles every bit."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def sample_keys(seed: int, epoch: int | np.ndarray, index: int | np.ndarray) -> np.ndarray:
    """uint64 keys [B] of samples ``index`` (ints < 2**40) in ``epoch`` (ints < 2**24) of run ``seed``."""
    epoch, index = _integers("epochs", epoch), _integers("sample indices", index)
    if index.size and index.max() >= 1 << INDEX_BITS:
        raise SimCLRError(f"sample indices must be in [0, 2**{INDEX_BITS}), got {index.min()}..{index.max()}")
    if epoch.size and epoch.max() >= 1 << EPOCH_BITS:
        raise SimCLRError(f"epochs must be in [0, 2**{EPOCH_BITS}), got {epoch.min()}..{epoch.max()}")
    try:
        epoch, index = np.broadcast_arrays(epoch, index)
    except ValueError:
        raise SimCLRError(f"epochs and sample indices must have one shape, got {epoch.shape} and {index.shape}") from None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 1 << 64:
        raise SimCLRError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    counter = (epoch << np.uint64(INDEX_BITS)) | index
    return np.atleast_1d(mix64(counter ^ mix64(np.uint64(int(seed)))))


def _integers(name: str, values: object) -> np.ndarray:
    """``values`` as a uint64 array if every entry is an integer >= 0 (below 2**64), else SimCLRError."""
    array = np.asarray(values.cpu().numpy() if hasattr(values, "cpu") else values)  # type: ignore[union-attr]
    if array.dtype.kind in "iu":
        valid = not array.size or array.min() >= 0
    else:
        valid = array.dtype.kind == "O" and all(_is_key(v) for v in array.ravel().tolist())
    if not valid and array.size:
        raise SimCLRError(f"{name} must be integers >= 0, got {values!r:.80}")
    return array.astype(np.uint64)


def sample_key(seed: int, epoch: int, index: int) -> int:
    """The key of one sample, as a Python int in [0, 2**64)."""
    return int(sample_keys(seed, epoch, index)[0])


def as_keys(keys: object) -> np.ndarray:
    """Keys given as ints, a list, a numpy array or a tensor -> uint64 [B]; one-line error otherwise."""
    if hasattr(keys, "numpy") and not isinstance(keys, np.ndarray):
        keys = keys.cpu().numpy()  # type: ignore[union-attr]
    array = np.atleast_1d(np.asarray(keys, dtype=object if isinstance(keys, (list, tuple)) else None))
    if array.ndim != 1 or (array.size and not all(_is_key(k) for k in array.tolist())):
        raise SimCLRError(f"keys must be integers in [0, 2**64), got {keys!r:.80}")
    return array.astype(np.uint64)


def _is_key(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and 0 <= int(value) < 1 << 64


def uniforms(keys: np.ndarray, view: int, first: int, count: int) -> np.ndarray:
    """float64 [B, count] in [0, 1): draws ``first .. first + count - 1`` of ``view`` for each key."""
    slots = np.arange(first, first + count, dtype=np.uint64) + np.uint64(view * SLOTS + 1)
    with np.errstate(over="ignore"):
        words = mix64(keys.astype(np.uint64)[:, None] + GOLDEN * slots[None, :])
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def order_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for epoch ``epoch``'s sample order, never equal to a sample's key stream."""
    # The index 2**40 - 1 is reserved for it: no dataset reaches that many samples.
    return sample_key(seed, epoch, (1 << INDEX_BITS) - 1) >> 1

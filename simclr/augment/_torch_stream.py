"""The draws of many seeded torch CPU generators at once, without creating any of them.

``ViewTransform.sample`` draws from ``make_generator(seed)``: torch's CPU generator, an
mt19937 seeded with the low 32 bits of the seed (the standard ``init_genrand``). Its
draws are made from the generator's 32-bit output words: ``rand`` (float64) takes two
words (hi, lo) and returns ``((hi & (2**21 - 1)) << 32 | lo) * 2**-53``; ``randint(high)``
takes one word and returns ``word % high`` (checked for high <= MAX_HIGH; torch 2.14
draws large ranges differently); ``randperm(n)`` takes n - 1 words for a
Fisher-Yates shuffle (``swap(i, i + word % (n - i))``). ``WordStream`` replays exactly
these rules on words from numpy's mt19937 (same algorithm, same seeding), one stream per
sample, vectorised over the batch. ``stream_matches_torch`` checks the rules against the
installed torch once per process; callers fall back to the per-sample sampler if not.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

_LOW_21 = np.uint64((1 << 21) - 1)
_LOW_32 = 0xFFFFFFFF
MAX_HIGH = 1 << 24  # largest randint bound checked; crop bounds are image sides + 1


def seed_words(seeds: Sequence[int], count: int) -> np.ndarray:
    """The first ``count`` output words of ``make_generator(seed)`` per seed: uint64 [B, count]."""
    out = np.empty((len(seeds), count), dtype=np.uint64)
    bit_generator = np.random.MT19937(0)
    # _legacy_seeding is init_genrand (what RandomState.seed calls) and 3x faster than
    # RandomState; numpy may drop it one day, so keep the public route as a fallback.
    legacy_seed = getattr(bit_generator, "_legacy_seeding", None)
    if legacy_seed is not None:
        for i, seed in enumerate(seeds):
            legacy_seed(int(seed) & _LOW_32)
            out[i] = bit_generator.random_raw(count)
    else:  # pragma: no cover - depends on the numpy version
        state = np.random.RandomState()
        for i, seed in enumerate(seeds):
            state.seed(int(seed) & _LOW_32)
            out[i] = state.randint(0, 1 << 32, size=count, dtype=np.uint64)
    return out


class WordStream:
    """One generator stream per sample; each draw reads only rows where ``active`` is True.

    ``active=None`` means every row. Rows that are not active neither draw nor advance, so
    a row's values depend on its own seed alone, never on its neighbours in the batch.
    """

    def __init__(self, words: np.ndarray) -> None:
        self.words = words
        self.size = int(words.shape[0])
        self.pos = np.zeros(self.size, dtype=np.int64)
        self._rows = np.arange(self.size)

    def _take(self, active: np.ndarray | None) -> np.ndarray:
        if int(self.pos.max(initial=0)) >= self.words.shape[1]:
            raise RuntimeError("WordStream ran out of words; raise the word count")
        word = self.words[self._rows, self.pos]
        self.pos += 1 if active is None else active
        return word

    def rand(self, active: np.ndarray | None = None) -> np.ndarray:
        """float64 [B] uniform in [0, 1), as ``torch.rand((), dtype=torch.float64)``."""
        hi = self._take(active)
        lo = self._take(active)
        return (((hi & _LOW_21) << np.uint64(32)) | lo).astype(np.float64) * 2.0**-53

    def uniform(self, lo: float, hi: float, active: np.ndarray | None = None) -> np.ndarray:
        """float64 [B] uniform in [lo, hi), as ``simclr.augment._random.uniform``."""
        return lo + (hi - lo) * self.rand(active)

    def randint(self, high: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """int64 [B] uniform in [0, high), as ``torch.randint(0, high, (1,))``; high <= MAX_HIGH."""
        word = self._take(active)
        safe_high = np.maximum(high, 1).astype(np.uint64)  # inactive rows may hold high <= 0
        return (word % safe_high).astype(np.int64)

    def randperm(self, n: int, active: np.ndarray | None = None) -> np.ndarray:
        """int64 [B, n] permutations of range(n), as ``torch.randperm(n)`` for small n."""
        perm = np.tile(np.arange(n, dtype=np.int64), (self.size, 1))
        for i in range(n - 1):
            j = i + (self._take(active) % np.uint64(n - i)).astype(np.int64)
            at_i = perm[self._rows, i].copy()
            perm[self._rows, i] = perm[self._rows, j]
            perm[self._rows, j] = at_i
        return perm


@functools.lru_cache(maxsize=1)
def stream_matches_torch() -> bool:
    """True if ``WordStream`` reproduces this torch's CPU generator draws (checked once)."""
    # Imported here: _random is what ViewTransform.sample uses, so it is the reference.
    from simclr.augment._random import rand, randint, randperm
    from simclr.augment.seeding import make_generator

    seeds = [0, 1, 2**32 + 5, 2**63 - 1, 6569863346532939966]
    highs = np.array([1, 7, 1000, MAX_HIGH], dtype=np.int64)
    stream = WordStream(seed_words(seeds, 32))
    ours = [stream.rand(), stream.randperm(4), *(stream.randint(h) for h in highs)]
    ours.append(stream.rand())
    for row, seed in enumerate(seeds):
        generator = make_generator(seed)
        theirs = [rand(generator), randperm(4, generator)]
        theirs += [randint(generator, int(h)) for h in highs] + [rand(generator)]
        mine = [ours[0][row], tuple(ours[1][row].tolist())]
        mine += [int(values[row]) for values in ours[2:-1]] + [ours[-1][row]]
        if mine != theirs:
            return False
    return True

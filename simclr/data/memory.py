"""Hold a small image folder in memory, decoded once, so it trains like mnist5k or CIFAR.

A folder of a few thousand small images (28 px digits, 64 px icons) costs a few MB decoded,
yet read through loader workers every step re-decodes its files on cores the network needs
(measured on a 2-core CPU: 1.2-1.7 s a step for 3,000 28 px PNGs against 1.06 s for the same
number of digits in memory). Decoded into one uint8 tensor, it takes the in-memory path of
``simclr.train.loader`` and of evaluation: no workers, no decoding after the first pass.

``data.in_memory``: ``None`` (auto) decodes a folder whose images all have one size (read
from their headers) and, decoded, take at most ``AUTO_LIMIT_BYTES``; ``True`` always decodes
(and needs one size); ``False`` never does.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm import tqdm

from simclr.data.datasets import DataSplits, ImageFiles, TensorImages
from simclr.errors import SimCLRError

AUTO_LIMIT_BYTES = 512 * 2**20  # decoded uint8 bytes under which a folder is held in memory by default
_THREADS = 8  # PIL's decoders release the GIL

log = logging.getLogger("simclr")


def _distinct(splits: DataSplits) -> list[ImageFiles]:
    seen: list[ImageFiles] = []
    for split in (splits.pretrain, splits.train, splits.test):
        if isinstance(split, ImageFiles) and all(split is not other for other in seen):
            seen.append(split)
    return seen


def _sizes(files: list[ImageFiles]) -> list[tuple[int, int]]:
    """The distinct (height, width) of every image as shown, from the file headers, sorted."""
    return sorted({split.upright_size(index) for split in files for index in range(len(split))})


def _decode_all(files: ImageFiles, threads: int) -> torch.Tensor:
    with ThreadPoolExecutor(threads) as pool:
        return torch.stack(list(tqdm(pool.map(lambda i: files[i][0], range(len(files))), total=len(files),
                                     desc="loading images", unit="img", delay=2, leave=False, dynamic_ncols=True)))


def hold_in_memory(splits: DataSplits, in_memory: bool | None = None) -> DataSplits:
    """``splits`` with its folder splits (``ImageFiles``) decoded into ``TensorImages`` when asked or small.

    Splits that are the same object stay the same object (pretraining on the train split).
    Other data (already in memory, torchvision) is returned unchanged.

    Raises:
        SimCLRError: an unreadable image (named), or ``in_memory=True`` with images of several sizes.
    """
    files = _distinct(splits)
    if not files or in_memory is False:
        return splits
    count = sum(len(split) for split in files)
    if in_memory is None and count * 3 * splits.image_size**2 > AUTO_LIMIT_BYTES:  # at the sampled native size
        return splits
    sizes = _sizes(files)  # headers only: a folder of several sizes is not decoded for nothing
    if len(sizes) > 1:
        if in_memory:
            raise SimCLRError(f"data.in_memory=true needs images of one size; '{splits.name}' has "
                              f"{len(sizes)} sizes, e.g. {sizes[0]} and {sizes[-1]} (height, width)")
        log.debug("%s has images of %d sizes: kept on disk", splits.name, len(sizes))
        return splits
    threads = max(1, min(_THREADS, os.cpu_count() or 1))
    converted = {id(split): TensorImages(_decode_all(split, threads), split.labels, split.paths) for split in files}
    total = sum(t.images.numel() for t in converted.values())
    log.info("holding %s decoded in memory (%.1f MB)", splits.name, total / 1e6)

    def swap(split: object) -> object:
        return converted.get(id(split), split)

    return dataclasses.replace(splits, pretrain=swap(splits.pretrain), train=swap(splits.train), test=swap(splits.test))

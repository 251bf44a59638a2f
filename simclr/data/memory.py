"""Hold a small image folder in memory, decoded once, so it trains like mnist5k or CIFAR.

A folder of a few thousand small images (28 px digits, 64 px icons) costs a few MB decoded,
yet read through loader workers every step re-decodes its files on cores the network needs
(measured on a 2-core CPU: 1.2-1.7 s a step for 3,000 28 px PNGs against 1.06 s for the same
number of digits in memory). Decoded into one uint8 tensor, it takes the in-memory path of
``simclr.train.loader`` and of evaluation: no workers, no decoding after the first pass.

``data.in_memory``: ``None`` (auto) decodes a folder whose images, decoded, would take at
most ``AUTO_LIMIT_BYTES`` (estimated from the sampled native size) and keeps them when they
all have one size; ``True`` always decodes (and needs one size); ``False`` never does.
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


def _decoded_bytes(splits: DataSplits) -> int:
    """Estimated uint8 bytes of every distinct split decoded at the folder's native size."""
    count = sum(len(split) for split in _distinct(splits))
    return count * 3 * splits.image_size * splits.image_size


def _distinct(splits: DataSplits) -> list[ImageFiles]:
    seen: list[ImageFiles] = []
    for split in (splits.pretrain, splits.train, splits.test):
        if isinstance(split, ImageFiles) and all(split is not other for other in seen):
            seen.append(split)
    return seen


def _decode_all(files: ImageFiles, threads: int) -> list[torch.Tensor]:
    with ThreadPoolExecutor(threads) as pool:
        return list(tqdm(pool.map(lambda i: files[i][0], range(len(files))), total=len(files),
                         desc="loading images", unit="img", delay=2, leave=False, dynamic_ncols=True))


def _stacked(images: list[torch.Tensor], files: ImageFiles) -> torch.Tensor | None:
    """One uint8 [N, 3, H, W] tensor, or None when the images differ in size."""
    first = images[0].shape
    for index, image in enumerate(images):
        if image.shape != first:
            log.debug("'%s' is %s, '%s' is %s: folder kept on disk", files.paths[0], tuple(first[-2:]),
                      files.paths[index], tuple(image.shape[-2:]))
            return None
    return torch.stack(images)


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
    if in_memory is None and _decoded_bytes(splits) > AUTO_LIMIT_BYTES:
        return splits
    threads = max(1, min(_THREADS, os.cpu_count() or 1))
    converted: dict[int, TensorImages] = {}
    for split in files:
        images = _decode_all(split, threads)
        stacked = _stacked(images, split)
        if stacked is None:
            if in_memory:
                sizes = sorted({tuple(image.shape[-2:]) for image in images})
                raise SimCLRError(f"data.in_memory=true needs images of one size; '{splits.name}' has "
                                  f"{len(sizes)} sizes, e.g. {sizes[0]} and {sizes[-1]} (height, width)")
            return splits
        converted[id(split)] = TensorImages(stacked, split.labels, split.paths)
    total = sum(t.images.numel() for t in converted.values())
    log.info("holding %s decoded in memory (%.1f MB)", splits.name, total / 1e6)

    def swap(split: object) -> object:
        return converted.get(id(split), split)

    return dataclasses.replace(splits, pretrain=swap(splits.pretrain), train=swap(splits.train), test=swap(splits.test))

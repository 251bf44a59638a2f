"""``load_data``: one entry point for built-in, torchvision and folder datasets."""
from __future__ import annotations

import os

from simclr.data.datasets import DataSplits
from simclr.data.folders import load_folder
from simclr.data.memory import hold_in_memory
from simclr.data.mnist import load_mnist5k
from simclr.data.splits import check_fraction
from simclr.data.vision import load_torchvision
from simclr.errors import SimCLRError

BUILTIN: tuple[str, ...] = ("mnist5k",)
TORCHVISION: tuple[str, ...] = ("cifar10", "cifar100", "stl10")

__all__ = ["BUILTIN", "TORCHVISION", "DataSplits", "load_data"]


def _looks_like_path(name: str) -> bool:
    # A missing "./pets" should be reported as a missing path, a typo such as
    # "cifar-10" as an unknown dataset name.
    seps = tuple(s for s in (os.sep, os.altsep) if s)
    return any(s in name for s in seps) or name.startswith((".", "~"))


def load_data(
    name: str | os.PathLike[str],
    root: str | os.PathLike[str] = "./data",
    download: bool = False,
    valid_size: float = 0.2,
    seed: int = 0,
    skip_bad_images: bool = False,
    in_memory: bool | None = None,
) -> DataSplits:
    """Resolve ``name`` to a dataset and return its pretrain/train/test splits.

    Args:
        name: a built-in name (``BUILTIN``), a torchvision name (``TORCHVISION``,
            case-insensitive) or a folder path. Names win over same-named folders;
            write ``./cifar10`` to mean the folder.
        root: where torchvision datasets live / are downloaded to.
        download: allow torchvision to download missing files.
        valid_size: test fraction for class-subfolder folders, in (0, 1).
        seed: seeds the folder split (mnist5k's split is fixed on purpose).
        skip_bad_images: folders only: decode every file once and leave out the
            unreadable ones (listed in ``DataSplits.skipped``) instead of failing.
        in_memory: folders only: decode every image once and hold the splits in memory
            (``simclr.data.memory.hold_in_memory``; None: when they are small).

    Raises:
        SimCLRError: unknown name, missing path/files, bad ``valid_size``, unreadable image.
    """
    check_fraction(valid_size, "valid_size")
    text = os.fspath(name)
    key = text.strip().lower()
    if key in BUILTIN:
        return load_mnist5k()
    if key in TORCHVISION:
        return load_torchvision(key, root, download)
    if text and (os.path.exists(os.path.expanduser(text)) or _looks_like_path(text)):
        return hold_in_memory(load_folder(text, valid_size, seed, skip_bad_images), in_memory)
    raise SimCLRError(
        f"data '{text}' is not a built-in dataset ({', '.join(BUILTIN)}), a torchvision dataset "
        f"({', '.join(TORCHVISION)}) or an existing path"
    )

"""Datasets from a folder of image files, in one of three layouts.

* ``ROOT/train/<class>/...`` + ``ROOT/test/<class>/...`` (or ``ROOT/val``): labelled
  train/test. A lone ``ROOT/train`` is split like the next layout.
* ``ROOT/<class>/...``: labelled, split into train/test with a seeded stratified split.
* ``ROOT/*.jpg`` (no class subfolders): unlabeled, pretraining only.

We scan folders ourselves instead of using torchvision's ``ImageFolder`` because
it does not skip hidden entries (``.ipynb_checkpoints``, ``._foo.jpg``), raises
on empty class folders, and the split/label-remap logic would wrap it anyway.
"""
from __future__ import annotations

import os

import numpy as np

from simclr.data.datasets import DataSplits, ImageFiles
from simclr.data.images import IMG_EXTENSIONS, image_shorter_side, is_image_file, open_rgb
from simclr.data.splits import stratified_split
from simclr.errors import SimCLRError

SIZE_SAMPLES = 50  # images whose header is read to estimate the native size
STATS_SAMPLES = 256  # images decoded (downscaled) to estimate mean/std
_STATS_SIDE = 64  # colour statistics barely change with resolution; decode small
_MIN_STD = 0.01  # guards normalisation against single-colour folders


def _no_images(path: str) -> SimCLRError:
    exts = ", ".join(IMG_EXTENSIONS)
    return SimCLRError(f"no images found under '{path}' (looked for {exts})")


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _images_below(directory: str) -> list[str]:
    """All image files under ``directory`` (recursive, hidden entries skipped), sorted."""
    found: list[str] = []
    # followlinks: symlinked class folders are a common way to assemble datasets
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        found.extend(os.path.join(dirpath, f) for f in filenames if is_image_file(f))
    return sorted(found)


def _scan(directory: str) -> tuple[list[str], dict[str, list[str]]]:
    """Return (top-level image files, {class folder name: its images}).

    Subfolders without any image are not classes and are left out.
    """
    loose: list[str] = []
    classes: dict[str, list[str]] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise SimCLRError(f"cannot list data folder '{directory}': {exc.strerror or exc}") from exc
    for entry in entries:
        if not _visible(entry.name):
            continue
        if entry.is_dir():
            images = _images_below(entry.path)
            if images:
                classes[entry.name] = images
        elif entry.is_file() and is_image_file(entry.name):
            loose.append(entry.path)
    return loose, classes


def _evenly(n: int, k: int) -> list[int]:
    """Up to k indices spread evenly over range(n): deterministic and class-diverse."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


def _native_size(paths: list[str]) -> int:
    sides = [image_shorter_side(paths[i]) for i in _evenly(len(paths), SIZE_SAMPLES)]
    return int(round(float(np.median(sides))))


def _channel_stats(paths: list[str]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel RGB mean/std in [0, 1] units, pooled over the sampled pixels."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i in _evenly(len(paths), STATS_SAMPLES):
        pixels = np.asarray(open_rgb(paths[i], _STATS_SIDE), dtype=np.float64).reshape(-1, 3) / 255.0
        total += pixels.sum(0)
        total_sq += (pixels**2).sum(0)
        count += pixels.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.maximum(std, _MIN_STD)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)  # type: ignore[return-value]


def _labelled(classes: dict[str, list[str]], names: list[str]) -> tuple[list[str], list[int]]:
    index = {name: i for i, name in enumerate(names)}
    paths: list[str] = []
    labels: list[int] = []
    for name in sorted(classes):
        paths.extend(classes[name])
        labels.extend([index[name]] * len(classes[name]))
    return paths, labels


def _finish(
    name: str, pretrain: ImageFiles, train: ImageFiles | None, test: ImageFiles | None, classes: list[str]
) -> DataSplits:
    mean, std = _channel_stats(pretrain.paths)
    return DataSplits(
        name=name,
        pretrain=pretrain,
        train=train,
        test=test,
        num_classes=len(classes),
        classes=classes,
        image_size=_native_size(pretrain.paths),
        mean=mean,
        std=std,
    )


def _train_test_layout(root: str, test_dir: str) -> DataSplits:
    train_dir = os.path.join(root, "train")
    train_loose, train_classes = _scan(train_dir)
    if not train_classes:
        if train_loose:
            raise SimCLRError(f"'{train_dir}' has images but no class subfolders; expected '{train_dir}/<class>/...'")
        raise _no_images(train_dir)
    _, test_classes = _scan(test_dir)
    if not test_classes:
        raise _no_images(test_dir)
    unknown = sorted(set(test_classes) - set(train_classes))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise SimCLRError(f"classes in '{test_dir}' that are missing from '{train_dir}': {shown}")
    names = sorted(train_classes)
    train = ImageFiles(*_labelled(train_classes, names))
    test = ImageFiles(*_labelled(test_classes, names))
    return _finish(root, train, train, test, names)


def _class_layout(root: str, classes: dict[str, list[str]], valid_size: float, seed: int) -> DataSplits:
    names = sorted(classes)
    paths, labels = _labelled(classes, names)
    train_idx, test_idx = stratified_split(labels, valid_size, seed)
    if not test_idx:
        raise SimCLRError(f"every class under '{root}' has a single image; need >= 2 per class for a test split")
    train = ImageFiles([paths[i] for i in train_idx], [labels[i] for i in train_idx])
    test = ImageFiles([paths[i] for i in test_idx], [labels[i] for i in test_idx])
    # Pretraining sees only the train split so the test images stay truly held out.
    return _finish(root, train, train, test, names)


def load_folder(path: str | os.PathLike[str], valid_size: float = 0.2, seed: int = 0) -> DataSplits:
    """Build DataSplits from an image folder (layouts in the module docstring).

    A folder with a single class subfolder (``ROOT/images/*.jpg``, the usual
    ImageFolder workaround for unlabeled data) is treated as unlabeled: a 1-class
    probe would report a meaningless 100%.

    Raises:
        SimCLRError: missing path, no images, mixed layout, unreadable sampled image.
    """
    shown = os.fspath(path)
    root = os.path.abspath(os.path.expanduser(shown))
    if not os.path.exists(root):
        raise SimCLRError(f"data path '{shown}' does not exist")
    if not os.path.isdir(root):
        raise SimCLRError(f"data path '{shown}' is not a directory")
    scan_dir, where = root, shown
    if os.path.isdir(os.path.join(root, "train")):
        for test_name in ("test", "val"):
            if os.path.isdir(os.path.join(root, test_name)):
                return _train_test_layout(root, os.path.join(root, test_name))
        # Without a test folder, "train" would otherwise become a single class.
        scan_dir, where = os.path.join(root, "train"), os.path.join(shown, "train")
    loose, classes = _scan(scan_dir)
    if loose and classes:
        raise SimCLRError(
            f"'{where}' mixes {len(loose)} top-level images with class subfolders; "
            "move the images into a class folder or use a separate folder"
        )
    if len(classes) >= 2:
        return _class_layout(root, classes, valid_size, seed)
    unlabeled = loose or next(iter(classes.values()), [])
    if not unlabeled:
        raise _no_images(where)
    return _finish(root, ImageFiles(unlabeled), None, None, [])

"""Datasets from a folder of image files, in one of three layouts.

* ``ROOT/train/<class>/...`` + ``ROOT/test/<class>/...`` (or ``ROOT/val``): labelled
  train/test. A lone ``ROOT/train`` is split like the next layout.
* ``ROOT/<class>/...``: labelled, split into train/test with a seeded stratified split.
* ``ROOT/*.jpg`` (no class subfolders): unlabeled, pretraining only.

We scan folders ourselves instead of using torchvision's ``ImageFolder`` because
it does not skip hidden entries (``.ipynb_checkpoints``, ``._foo.jpg``), raises
on empty class folders, and the split/label-remap logic would wrap it anyway.

Unreadable files (corrupt, truncated, empty, not images) are found lazily by default:
the first one read stops the run with its path. With ``skip_bad_images`` every file is
decoded once up front (at reduced scale for JPEG, on a thread pool) and the bad ones
are left out; that costs about one pass of decoding over the folder (minutes for
ImageNet), paid again by every command that loads the folder.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from simclr.data.datasets import DataSplits, ImageFiles
from simclr.data.images import (
    IMG_EXTENSIONS,
    image_problem,
    image_shorter_side,
    is_image_file,
    open_rgb,
)
from simclr.data.splits import stratified_split
from simclr.errors import SimCLRError

SIZE_SAMPLES = 50  # images whose header is read to estimate the native size
STATS_SAMPLES = 256  # images decoded (downscaled) to estimate mean/std
_STATS_SIDE = 64  # colour statistics barely change with resolution; decode small
_MIN_STD = 0.01  # guards normalisation against single-colour folders
SKIP_HINT = " (use --skip-bad-images to leave such files out)"
_CHECK_THREADS = 8  # PIL's decoders release the GIL, so threads check files in parallel
_CHECK_CHUNK = 1024  # files submitted at a time: bounded memory for million-file folders

log = logging.getLogger("simclr")


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


def find_unreadable(paths: list[str]) -> dict[str, str]:
    """``{path: reason}`` for each file of ``paths`` that does not decode (see ``image_problem``).

    A progress bar appears when the check takes more than two seconds.
    """
    problems: dict[str, str] = {}
    workers = max(1, min(_CHECK_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool, tqdm(
        total=len(paths), desc="checking images", unit="img", delay=2, leave=False, dynamic_ncols=True
    ) as bar:
        for start in range(0, len(paths), _CHECK_CHUNK):
            chunk = paths[start : start + _CHECK_CHUNK]
            for path, reason in zip(chunk, pool.map(image_problem, chunk)):
                if reason is not None:
                    problems[path] = reason
            bar.update(len(chunk))
    return problems


def _leave_out_unreadable(
    root: str, pretrain: ImageFiles, train: ImageFiles | None, test: ImageFiles | None
) -> tuple[ImageFiles, ImageFiles | None, ImageFiles | None, list[tuple[str, str]]]:
    """The splits without unreadable files, and those files as sorted (path, reason) pairs.

    Runs after the split, so the held-out test images do not depend on which files are bad.
    """
    paths = sorted({*pretrain.paths, *(train.paths if train else []), *(test.paths if test else [])})
    bad = find_unreadable(paths)
    if not bad:
        return pretrain, train, test, []
    skipped = sorted(bad.items())
    example = f"e.g. '{skipped[0][0]}': {skipped[0][1]}"
    kept_train = train.without(set(bad)) if train is not None else None
    kept_pretrain = kept_train if pretrain is train else pretrain.without(set(bad))
    kept_test = test.without(set(bad)) if test is not None else None
    for split, kept in (("training", kept_pretrain), ("test", kept_test)):
        if kept is not None and len(kept) == 0:
            raise SimCLRError(f"no readable image left in the {split} images of '{root}' ({len(bad)} unreadable, {example})")
    log.warning("left out %d unreadable image(s) of %d under '%s' (--skip-bad-images), %s",
                len(bad), len(paths), root, example)
    return kept_pretrain, kept_train, kept_test, skipped


@contextlib.contextmanager
def _suggesting(hint: str) -> Iterator[None]:
    """Append ``hint`` to the message of an unreadable image."""
    try:
        yield
    except SimCLRError as error:
        raise SimCLRError(f"{error}{hint}") from error


def _finish(
    name: str,
    pretrain: ImageFiles,
    train: ImageFiles | None,
    test: ImageFiles | None,
    classes: list[str],
    skip_bad_images: bool,
) -> DataSplits:
    skipped: list[tuple[str, str]] = []
    if skip_bad_images:
        pretrain, train, test, skipped = _leave_out_unreadable(name, pretrain, train, test)
    # Checked files that fail later have been changed since: suggesting the skip would not help.
    hint = "" if skip_bad_images else SKIP_HINT
    for split in (pretrain, train, test):
        if split is not None:
            split.error_hint = hint
    with _suggesting(hint):
        mean, std = _channel_stats(pretrain.paths)
        image_size = _native_size(pretrain.paths)
    return DataSplits(
        name=name,
        pretrain=pretrain,
        train=train,
        test=test,
        num_classes=len(classes),
        classes=classes,
        image_size=image_size,
        mean=mean,
        std=std,
        skipped=skipped,
    )


def _train_test_layout(root: str, test_dir: str, skip_bad_images: bool) -> DataSplits:
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
    return _finish(root, train, train, test, names, skip_bad_images)


def _class_layout(
    root: str, classes: dict[str, list[str]], valid_size: float, seed: int, skip_bad_images: bool
) -> DataSplits:
    names = sorted(classes)
    paths, labels = _labelled(classes, names)
    train_idx, test_idx = stratified_split(labels, valid_size, seed)
    if not test_idx:
        raise SimCLRError(f"every class under '{root}' has a single image; need >= 2 per class for a test split")
    train = ImageFiles([paths[i] for i in train_idx], [labels[i] for i in train_idx])
    test = ImageFiles([paths[i] for i in test_idx], [labels[i] for i in test_idx])
    # Pretraining sees only the train split so the test images stay truly held out.
    return _finish(root, train, train, test, names, skip_bad_images)


def load_folder(
    path: str | os.PathLike[str], valid_size: float = 0.2, seed: int = 0, skip_bad_images: bool = False
) -> DataSplits:
    """Build DataSplits from an image folder (layouts in the module docstring).

    A folder with a single class subfolder (``ROOT/images/*.jpg``, the usual
    ImageFolder workaround for unlabeled data) is treated as unlabeled: a 1-class
    probe would report a meaningless 100%. With ``skip_bad_images`` every file is
    decoded once and the unreadable ones are left out and listed in ``skipped``.

    Raises:
        SimCLRError: missing path, no images, mixed layout, unreadable sampled image
            (or, when skipping, no readable image left).
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
                return _train_test_layout(root, os.path.join(root, test_name), skip_bad_images)
        # Without a test folder, "train" would otherwise become a single class.
        scan_dir, where = os.path.join(root, "train"), os.path.join(shown, "train")
    loose, classes = _scan(scan_dir)
    if loose and classes:
        raise SimCLRError(
            f"'{where}' mixes {len(loose)} top-level images with class subfolders; "
            "move the images into a class folder or use a separate folder"
        )
    if len(classes) >= 2:
        return _class_layout(root, classes, valid_size, seed, skip_bad_images)
    unlabeled = loose or next(iter(classes.values()), [])
    if not unlabeled:
        raise _no_images(where)
    return _finish(root, ImageFiles(unlabeled), None, None, [], skip_bad_images)

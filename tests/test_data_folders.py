"""Tests for simclr.data folder layouts (folders.py) and image decoding (images.py)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _images import save_image as _save
from _images import solid_rgb as _rgb
from PIL import Image

from simclr.data import load_data as _load_data
from simclr.data import DataSplits, load_image
from simclr.errors import SimCLRError


def load_data(*args: Any, **kwargs: Any) -> DataSplits:
    """``simclr.data.load_data`` with the folder kept on disk: these tests look at its files and split."""
    return _load_data(*args, in_memory=False, **kwargs)


def _labels(ds) -> list[int]:
    return [int(ds[i][1]) for i in range(len(ds))]


def _class_folder(root: Path, counts: dict[str, int]) -> None:
    for name, n in counts.items():
        for i in range(n):
            _save(root / name / f"{i:03d}.png", _rgb((i * 10 % 256, 0, 0)))


# ---------------------------------------------------------------- folders


def test_train_test_layout(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / "train" / "cat" / f"{i}.png", _rgb((255, 0, 0)))
        _save(tmp_path / "train" / "dog" / f"{i}.JPG", _rgb((0, 255, 0)))
    _save(tmp_path / "test" / "dog" / "a.png", _rgb((0, 0, 255)))
    _save(tmp_path / "train" / "dog" / ".hidden.png", _rgb((1, 1, 1)))
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    splits = load_data(str(tmp_path))
    assert splits.classes == ["cat", "dog"] and splits.num_classes == 2
    assert len(splits.train) == 6 and len(splits.test) == 1
    assert splits.pretrain is splits.train
    assert _labels(splits.train) == [0, 0, 0, 1, 1, 1]
    image, label = splits.test[0]
    assert label == 1 and image.dtype == torch.uint8 and image.shape == (3, 6, 8)
    assert image[:, 0, 0].tolist() == [0, 0, 255]


def test_val_folder_and_lone_train_folder(tmp_path: Path) -> None:
    _class_folder(tmp_path / "a" / "train", {"x": 4, "y": 4})
    _class_folder(tmp_path / "a" / "val", {"y": 2})
    splits = load_data(str(tmp_path / "a"))
    assert len(splits.train) == 8 and _labels(splits.test) == [1, 1]
    _class_folder(tmp_path / "b" / "train", {"x": 5, "y": 5})
    splits = load_data(str(tmp_path / "b"), valid_size=0.2)
    assert splits.classes == ["x", "y"] and Counter(_labels(splits.test)) == {0: 1, 1: 1}
    assert splits.name == str(tmp_path / "b")


def test_train_test_layout_unknown_test_class(tmp_path: Path) -> None:
    _save(tmp_path / "train" / "cat" / "0.png", _rgb((255, 0, 0)))
    _save(tmp_path / "test" / "bird" / "0.png", _rgb((255, 0, 0)))
    with pytest.raises(SimCLRError, match="bird"):
        load_data(str(tmp_path))


def test_class_folder_layout_stratified(tmp_path: Path) -> None:
    _class_folder(tmp_path, {"a": 10, "b": 5, "c": 1})
    splits = load_data(str(tmp_path), valid_size=0.2, seed=0)
    assert splits.classes == ["a", "b", "c"]
    assert Counter(_labels(splits.train)) == {0: 8, 1: 4, 2: 1}
    assert Counter(_labels(splits.test)) == {0: 2, 1: 1}
    assert not set(splits.train.paths) & set(splits.test.paths)
    assert len(splits.train.paths) + len(splits.test.paths) == 16

    again = load_data(str(tmp_path), valid_size=0.2, seed=0)
    assert again.test.paths == splits.test.paths
    other = load_data(str(tmp_path), valid_size=0.2, seed=1)
    assert other.test.paths != splits.test.paths


def test_class_folder_valid_size_changes_counts(tmp_path: Path) -> None:
    _class_folder(tmp_path, {"a": 10, "b": 10})
    splits = load_data(str(tmp_path), valid_size=0.5)
    assert Counter(_labels(splits.test)) == {0: 5, 1: 5}


def test_single_class_folder_is_unlabeled(tmp_path: Path) -> None:
    _class_folder(tmp_path, {"images": 3})
    splits = load_data(str(tmp_path))
    assert splits.train is None and splits.num_classes == 0 and len(splits.pretrain) == 3


def test_flat_folder_unlabeled(tmp_path: Path) -> None:
    sizes = [(30, 20), (40, 24), (16, 16)]  # (W, H): shorter sides 20, 24, 16
    for i, size in enumerate(sizes):
        _save(tmp_path / f"img{i}.png", _rgb((255, 255, 255) if i % 2 else (0, 0, 0), size))
    splits = load_data(str(tmp_path))
    assert splits.train is None and splits.test is None
    assert splits.num_classes == 0 and splits.classes == []
    assert len(splits.pretrain) == 3
    assert _labels(splits.pretrain) == [-1, -1, -1]
    assert splits.image_size == 20
    image, _ = splits.pretrain[0]
    assert image.shape == (3, 20, 30) and image.dtype == torch.uint8


def test_folder_channel_stats(tmp_path: Path) -> None:
    _save(tmp_path / "black.png", _rgb((0, 0, 0), (10, 10)))
    _save(tmp_path / "white.png", _rgb((255, 255, 255), (10, 10)))
    splits = load_data(str(tmp_path))
    assert splits.mean == pytest.approx((0.5, 0.5, 0.5), abs=1e-6)
    assert splits.std == pytest.approx((0.5, 0.5, 0.5), abs=1e-6)


def test_mixed_layout_rejected(tmp_path: Path) -> None:
    _class_folder(tmp_path, {"a": 2, "b": 2})
    _save(tmp_path / "loose.png", _rgb((0, 0, 0)))
    with pytest.raises(SimCLRError, match="mixes"):
        load_data(str(tmp_path))


# ---------------------------------------------------------------- image modes


def _modes() -> dict[str, Image.Image]:
    gray = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8))
    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (10, 200, 30, 255))
    pal = Image.new("P", (8, 6), 1)
    pal.putpalette([255, 0, 0] + [0, 255, 0] * 255)
    deep = Image.fromarray((np.arange(48, dtype=np.uint16).reshape(6, 8) * 1365))
    return {
        "gray.png": gray,
        "bw.png": gray.convert("1"),
        "gray_alpha.png": Image.merge("LA", (gray, gray)),
        "rgba.png": rgba,
        "palette.gif": pal,
        "deep16.png": deep,
        "cmyk.jpg": Image.new("CMYK", (8, 6), (0, 0, 0, 0)),
        "photo.webp": _rgb((9, 9, 9)),
        "photo.tiff": _rgb((9, 9, 9)),
        "photo.bmp": _rgb((9, 9, 9)),
    }


@pytest.mark.parametrize("name", sorted(_modes()))
def test_image_modes_become_uint8_rgb(tmp_path: Path, name: str) -> None:
    image = load_image(_save(tmp_path / name, _modes()[name]))
    assert image.dtype == torch.uint8 and image.shape == (3, 6, 8)
    assert image.is_contiguous()


def test_grayscale_repeated(tmp_path: Path) -> None:
    image = load_image(_save(tmp_path / "g.png", _modes()["gray.png"]))
    assert torch.equal(image[0], image[2])
    assert image[0].flatten().tolist() == list(range(48))


def test_rgba_composited_on_black(tmp_path: Path) -> None:
    image = load_image(_save(tmp_path / "a.png", _modes()["rgba.png"]))
    assert image[:, 0, 0].tolist() == [10, 200, 30]  # opaque pixel kept
    assert image[:, 1, 1].tolist() == [0, 0, 0]  # transparent red -> black


def test_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    pal.putpixel((0, 0), 1)
    pal.info["transparency"] = 0
    image = load_image(_save(tmp_path / "p.png", pal))
    assert image[:, 0, 0].tolist() == [0, 255, 0]
    assert image[:, 3, 3].tolist() == [0, 0, 0]


def test_16bit_scaled_to_8bit(tmp_path: Path) -> None:
    # low bytes of these values (0, 232, 0, 255) differ from the scaled ones
    deep = Image.fromarray(np.array([[0, 1000, 25600, 65535]], dtype=np.uint16))
    image = load_image(_save(tmp_path / "d.png", deep))
    assert image[0, 0].tolist() == [0, 4, 100, 255]


# ---------------------------------------------------------------- file errors


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    _save(tmp_path / ".hidden.png", _rgb((0, 0, 0)))
    (tmp_path / "emptyclass").mkdir()
    with pytest.raises(SimCLRError, match="no images found") as info:
        load_data(str(tmp_path))
    assert str(tmp_path) in str(info.value) and ".png" in str(info.value)


@pytest.mark.parametrize(
    "kind,content",
    [("corrupt", bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8))), ("empty", b"")],
)
def test_unreadable_file(tmp_path: Path, kind: str, content: bytes) -> None:
    bad = tmp_path / f"{kind}.png"
    bad.write_bytes(content)
    with pytest.raises(SimCLRError, match="cannot read image") as info:
        load_image(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    _save(tmp_path / "good.png", _rgb((0, 0, 0)))
    with pytest.raises(SimCLRError, match="cannot read image"):
        load_data(str(tmp_path))


def test_truncated_file(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = _save(tmp_path / "full.png", Image.fromarray(noise))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(SimCLRError, match="cut.png"):
        load_image(cut)


def test_missing_file_in_dataset(tmp_path: Path) -> None:
    path = _save(tmp_path / "x.png", _rgb((0, 0, 0)))
    splits = load_data(str(tmp_path))
    path.unlink()
    with pytest.raises(SimCLRError, match="x.png"):
        splits.pretrain[0]


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, float("nan"), "0.2"])
def test_valid_size_out_of_range(tmp_path: Path, value) -> None:
    _class_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(SimCLRError, match="valid_size"):
        load_data(str(tmp_path), valid_size=value)

"""Bad image files in folders: converted where sensible, else reported by path or skipped and counted."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _images import save_image
from conftest import TINY_ARGS
from PIL import Image

from simclr.augment import ViewTransform
from simclr.cli.main import build_parser, main
from simclr.cli.options import config_from_args
from simclr.data import load_data
from simclr.data.folders import SKIP_HINT, find_unreadable
from simclr.data.images import image_problem, load_image
from simclr.errors import SimCLRError
from simclr.train.metrics import read_metrics


def _noise(size: int = 32, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    _noise().save(buffer, format=fmt)
    return buffer.getvalue()


# name -> (bytes on disk, or None for a dangling link), words the reason must contain
BAD_FILES = {
    "zero.png": (b"", "empty (0 bytes)"),
    "random.jpg": (bytes(np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8)), "not an image format"),
    "notes.jpg": (b"shopping list: eggs, milk\n", "not an image format"),
    "page.png": (b"<!doctype html><html>404 not found</html>", "not an image format"),
    "truncated.png": (_encoded("PNG")[:1500], "truncated"),
    "truncated.jpg": (_encoded("JPEG")[:700], "truncated"),
    "header_only.png": (_encoded("PNG")[:60], "truncated"),
    "dangling.png": (None, "no such file"),
}


def _write_bad(folder: Path, name: str) -> Path:
    content = BAD_FILES[name][0]
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    if content is None:
        os.symlink(folder / "missing-target.png", path)
    else:
        path.write_bytes(content)
    return path


def _good_folder(root: Path, per_class: int = 6) -> Path:
    for label in ("a", "b"):
        for k in range(per_class):
            save_image(root / label / f"{k}.png", _noise(16, seed=10 * ord(label) + k))
    return root


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gets_a_one_line_reason(name: str, tmp_path: Path) -> None:
    path = _write_bad(tmp_path, name)
    reason = image_problem(path)
    assert reason is not None and "\n" not in reason and BAD_FILES[name][1] in reason
    with pytest.raises(SimCLRError) as info:
        load_image(path)
    assert str(info.value) == f"cannot read image '{path}': {reason}"


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_without_skip_a_bad_file_stops_with_its_path_and_the_hint(name: str, tmp_path: Path) -> None:
    root = _good_folder(tmp_path / "data")
    path = _write_bad(root / "b", name)
    with pytest.raises(SimCLRError) as info:
        load_data(str(root))
    assert str(info.value) == f"cannot read image '{path}': {image_problem(path)}{SKIP_HINT}"
    assert SKIP_HINT == " (use --skip-bad-images to leave such files out)"


def test_skip_leaves_out_every_bad_file_and_lists_it(tmp_path: Path) -> None:
    root = _good_folder(tmp_path / "data")
    bad = sorted(str(_write_bad(root / ("a" if i % 2 else "b"), name)) for i, name in enumerate(sorted(BAD_FILES)))
    splits = load_data(str(root), skip_bad_images=True, in_memory=False)
    assert [path for path, _ in splits.skipped] == bad
    assert all(reason == image_problem(path) for path, reason in splits.skipped)
    used = set(splits.train.paths) | set(splits.test.paths)
    assert len(used) == 12 and not used & set(bad)
    for split in (splits.train, splits.test):  # every item that is left decodes
        for index in range(len(split)):
            assert split[index][0].dtype == torch.uint8


def test_skip_leaves_the_test_split_as_it_would_be_without_bad_files(tmp_path: Path) -> None:
    """The split is drawn over all files first, so skipping cannot move images into pretraining."""
    clean = _good_folder(tmp_path / "clean", per_class=10)
    dirty = _good_folder(tmp_path / "dirty", per_class=10)
    for name in ("a/3.png", "b/7.png"):
        (dirty / name).write_bytes(b"")
    reference = load_data(str(clean), seed=4, in_memory=False)
    skipped = load_data(str(dirty), seed=4, skip_bad_images=True, in_memory=False)
    def relative(paths: list[str], root: Path) -> list[str]:
        return sorted(os.path.relpath(p, root) for p in paths)

    for split in ("train", "test"):
        expected = [p for p in relative(getattr(reference, split).paths, clean) if p not in ("a/3.png", "b/7.png")]
        assert relative(getattr(skipped, split).paths, dirty) == expected
    assert skipped.pretrain is skipped.train


def test_skip_with_nothing_readable_left_is_an_error(tmp_path: Path) -> None:
    for name in ("zero.png", "notes.jpg"):
        _write_bad(tmp_path / "data", name)
    with pytest.raises(SimCLRError, match=r"no readable image left in the training images of .*2 unreadable"):
        load_data(str(tmp_path / "data"), skip_bad_images=True)


def test_file_broken_after_loading_names_the_path(tmp_path: Path) -> None:
    """Decoded lazily: a file damaged after the folder was loaded fails when read, naming it."""
    root = _good_folder(tmp_path / "data")
    for skip, hint in ((False, SKIP_HINT), (True, "")):  # after a check, skipping would not help
        splits = load_data(str(root), skip_bad_images=skip, in_memory=False)
        path = splits.train.paths[0]
        original = Path(path).read_bytes()
        Path(path).write_bytes(b"")
        with pytest.raises(SimCLRError) as info:
            splits.train[0]
        assert str(info.value) == f"cannot read image '{path}': the file is empty (0 bytes){hint}"
        Path(path).write_bytes(original)


def _odd_images() -> dict[str, Image.Image]:
    gray = Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6) * 8)
    palette = Image.new("P", (6, 5), 2)
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0, 0, 0] * 253)
    frames = [Image.new("RGB", (6, 5), (40 * i, 0, 0)) for i in range(3)]
    return {
        "gray.png": gray,
        "bilevel.png": gray.convert("1"),
        "gray_alpha.png": Image.merge("LA", (gray, gray)),
        "rgba.png": Image.new("RGBA", (6, 5), (255, 0, 0, 128)),
        "palette.png": palette,
        "deep16.png": Image.fromarray(np.full((5, 6), 40000, dtype=np.uint16)),
        "int32.tiff": Image.new("I", (6, 5), 70000),
        "float.tiff": Image.fromarray(np.full((5, 6), 0.5, dtype=np.float32)),
        "cmyk.jpg": Image.new("CMYK", (6, 5), (0, 255, 255, 0)),
        "animated.gif": frames[0],
        "tiny.png": Image.new("RGB", (1, 1), (7, 8, 9)),
        "sliver.png": Image.new("RGB", (3, 1), (7, 8, 9)),
        "png_named.jpg": Image.new("RGB", (6, 5), (1, 2, 3)),
    }


def test_odd_but_valid_images_are_converted_not_skipped(tmp_path: Path) -> None:
    images = _odd_images()
    root = tmp_path / "odd"
    for name, image in images.items():
        root.mkdir(exist_ok=True)
        if name == "animated.gif":
            frames = [Image.new("RGB", (6, 5), (40 * i, 0, 0)) for i in range(3)]
            frames[0].save(root / name, save_all=True, append_images=frames[1:])
        elif name == "png_named.jpg":
            image.save(root / name, format="PNG")
        else:
            image.save(root / name)
    assert find_unreadable(sorted(str(p) for p in root.iterdir())) == {}
    splits = load_data(str(root), skip_bad_images=True, in_memory=False)
    assert splits.skipped == [] and len(splits.pretrain) == len(images)
    view = ViewTransform(size=16)
    for index, path in enumerate(splits.pretrain.paths):
        image, _ = splits.pretrain[index]
        expected_hw = (1, 1) if "tiny" in path else (1, 3) if "sliver" in path else (5, 6)
        assert image.dtype == torch.uint8 and tuple(image.shape) == (3, *expected_hw), path
        # Smaller than the crop: a view upsamples it to the training size.
        out = view(image, index)
        assert out.shape == (3, 16, 16) and torch.isfinite(out).all()


def test_odd_images_have_the_expected_pixels(tmp_path: Path) -> None:
    """Conversions against values computed by hand."""
    images = _odd_images()

    def pixel(name: str) -> list[int]:
        return load_image(save_image(tmp_path / name, images[name]))[:, 0, 0].tolist()

    assert pixel("deep16.png") == [round(40000 / 257)] * 3  # 16 bits scaled to 8
    assert pixel("int32.tiff") == [255] * 3  # clipped to 16 bits, then scaled
    assert pixel("float.tiff") == [128] * 3  # [0, 1] floats times 255
    assert pixel("palette.png") == [0, 0, 255]  # palette entry 2
    assert pixel("rgba.png") == [128, 0, 0]  # half-transparent red on black
    assert pixel("gray.png") == [0, 0, 0] and pixel("tiny.png") == [7, 8, 9]


def test_skip_bad_images_flag_sets_the_config(tmp_path: Path) -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args(["pretrain"])).data.skip_bad_images is False
    assert config_from_args(parser.parse_args(["pretrain", "--skip-bad-images"])).data.skip_bad_images is True
    assert config_from_args(parser.parse_args(["pretrain", "--set", "data.skip_bad_images=true"])).data.skip_bad_images is True


def test_pretrain_with_skip_bad_images_counts_them_in_log_and_metrics(tmp_path: Path, caplog) -> None:
    root = _good_folder(tmp_path / "data", per_class=8)
    for name in ("zero.png", "truncated.png"):
        _write_bad(root / "a", name)
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(root), "--output", str(run), *TINY_ARGS, "--batch-size", "4",
                 "--max-steps", "1", "--skip-bad-images"]) == 0
    assert "left out 2 unreadable image(s) of 18" in caplog.text
    counts = [row["skipped_images"] for row in read_metrics(run / "metrics.jsonl") if "skipped_images" in row]
    assert counts == [2]


def test_bad_file_met_in_a_loader_worker_is_one_clean_line(tmp_path: Path, capsys) -> None:
    """Not among the files sampled up front, so a loader process meets it during the first step."""
    root = tmp_path / "many"
    for index in range(300):
        save_image(root / f"{index:03d}.png", _noise(8, seed=index))
    sampled = set(np.linspace(0, 299, 256).round().astype(int)) | set(np.linspace(0, 299, 50).round().astype(int))
    bad = root / f"{min(set(range(300)) - sampled):03d}.png"
    bad.write_bytes(b"")
    status = main(["pretrain", "--data", str(root), "--output", str(tmp_path / "run"), *TINY_ARGS,
                   "--batch-size", "300", "--max-steps", "1", "--workers", "1"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert status == 2 and lines == [f"error: cannot read image '{bad}': the file is empty (0 bytes){SKIP_HINT}"]

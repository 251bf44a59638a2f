"""Small folders held in memory (``simclr.data.memory``): same images, same training, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from simclr.checkpoint import load_latest
from simclr.config import Config
from simclr.data import ImageFiles, TensorImages, load_data, load_image
from simclr.data import memory
from simclr.errors import SimCLRError
from simclr.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("one_thread")


def _folder(root: Path, per_class: int = 12, sizes: tuple[tuple[int, int], ...] = ((20, 20),)) -> Path:
    generator = torch.Generator().manual_seed(0)
    for label, name in enumerate(("cat", "dog", "owl")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            height, width = sizes[i % len(sizes)]
            pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8)
            pixels[..., label] = 255  # a class-coloured channel
            Image.fromarray(pixels.numpy()).save(root / name / f"{i:02d}.png")
    return root


def test_a_small_folder_is_decoded_into_memory_with_the_same_images_labels_and_split(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    on_disk = load_data(str(root), in_memory=False)
    held = load_data(str(root))
    assert isinstance(on_disk.train, ImageFiles) and isinstance(held.train, TensorImages)
    assert held.pretrain is held.train  # pretraining on the train split stays one object
    for files, tensors in ((on_disk.train, held.train), (on_disk.test, held.test)):
        assert torch.equal(tensors.labels, files.labels) and tensors.paths == files.paths
        expected = torch.stack([load_image(path) for path in files.paths])
        assert torch.equal(tensors.images, expected)
    assert (held.image_size, held.mean, held.std, held.classes) == (on_disk.image_size, on_disk.mean, on_disk.std, on_disk.classes)


def test_auto_keeps_large_or_mixed_size_folders_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mixed = _folder(tmp_path / "mixed", sizes=((20, 20), (24, 18)))
    assert isinstance(load_data(str(mixed)).train, ImageFiles)
    with pytest.raises(SimCLRError, match=r"data.in_memory=true needs images of one size; .* 2 sizes"):
        load_data(str(mixed), in_memory=True)
    same = _folder(tmp_path / "same")
    monkeypatch.setattr(memory, "AUTO_LIMIT_BYTES", 36 * 3 * 20 * 20 - 1)  # one image short of the folder
    assert isinstance(load_data(str(same)).train, ImageFiles)
    assert isinstance(load_data(str(same), in_memory=True).train, TensorImages)  # asked for: the limit does not apply


def test_an_unreadable_image_is_named_when_the_folder_is_loaded(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    (root / "dog" / "05.png").write_bytes(b"not a png")
    with pytest.raises(SimCLRError, match=r"cannot read image '.*05\.png'.*--skip-bad-images"):
        load_data(str(root))
    kept = load_data(str(root), skip_bad_images=True)
    assert isinstance(kept.train, TensorImages) and len(kept.train) + len(kept.test) == 35


def _pretrain(root: Path, output: Path, in_memory: bool | None) -> dict[str, torch.Tensor]:
    config = Config()
    config.data.name, config.data.in_memory, config.data.workers = str(root), in_memory, 0
    config.model.arch, config.model.width = "resnet18", 0.125
    config.train.output, config.train.batch_size, config.train.max_steps = str(output), 8, 3
    config.train.epochs, config.train.knn_every, config.train.device = 2, 0, "cpu"
    config.optim.warmup_epochs = 0
    pretrain(config)
    state, _ = load_latest(output / "checkpoints")
    return state["model"]


def test_pretraining_in_memory_equals_pretraining_from_disk(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", per_class=16)
    held = _pretrain(root, tmp_path / "held", None)
    on_disk = _pretrain(root, tmp_path / "disk", False)
    assert held.keys() == on_disk.keys()
    for name, value in held.items():
        torch.testing.assert_close(value, on_disk[name], rtol=0, atol=1e-6, msg=name)

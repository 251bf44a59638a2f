"""The data path: run sampler, stateless datasets, persistent workers, the three pipelines agree."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from simclr.augment import TwoViewTransform, ViewTransform, sample_key
from simclr.data import ImageFiles, TensorImages
from simclr.data.images import load_crops, load_image
from simclr.data.sampling import RunSampler, epoch_order
from simclr.errors import SimCLRError
from simclr.train.loader import PretrainBatches

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _natural(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(h, w), mode="bicubic")
    return ((x + 0.03 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1) * 255).round().to(torch.uint8)


def _write(images: torch.Tensor, folder: Path, suffix: str = ".png") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:03d}{suffix}"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, quality=95)
        paths.append(str(path))
    return paths


def _batches(data: Dataset, pipeline: str, workers: int = 0, start: int = 0, stop: int = 6, ranks: int = 1,
             rank: int = 0, size: int = 16, decode: str = "cpu") -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    view = ViewTransform(size, blur_p=0.5, solarize_p=0.2)
    batches = PretrainBatches(data, TwoViewTransform(view), 7, 8, pipeline, workers, CPU, ranks, rank, decode)
    return list(batches.iterate(start, stop))


# ---------------------------------------------------------------- sampler


def test_run_sampler_reads_whole_batches_of_each_epoch_once_and_resumes_anywhere() -> None:
    sampler = RunSampler(103, 10, seed=1, start_step=0, stop_step=30)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 300
    for epoch in range(3):
        indices = [i for e, i in keys if e == epoch]
        assert len(indices) == 100 and len(set(indices)) == 100
        assert indices == epoch_order(103, 1, epoch)[:100].tolist()
    assert [i for e, i in keys if e == 0] != [i for e, i in keys if e == 1]
    assert list(RunSampler(103, 10, 1, start_step=14, stop_step=30)) == keys[140:]


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused() -> None:
    with pytest.raises(SimCLRError, match="split evenly"):
        RunSampler(64, 10, 0, 0, 8, num_replicas=4, rank=0)


def test_rank_shards_are_disjoint_and_rebuild_each_global_batch() -> None:
    single = list(RunSampler(64, 16, 0, 0, 8))
    shards = [list(RunSampler(64, 16, 0, 0, 8, num_replicas=2, rank=r)) for r in range(2)]
    for step in range(8):
        local = [shard[step * 8 : (step + 1) * 8] for shard in shards]
        assert not set(local[0]) & set(local[1])
        assert sorted(local[0] + local[1]) == sorted(single[step * 16 : (step + 1) * 16])


# ---------------------------------------------------------------- pipelines


def test_in_memory_batched_equals_per_image_for_the_same_keys() -> None:
    data = TensorImages(_natural(40, 20, 26), torch.arange(40))
    for (a1, b1, l1), (a2, b2, l2) in zip(_batches(data, "auto"), _batches(data, "per_image")):
        assert torch.equal(l1, l2)
        # Rendering differs by float rounding only (a pixel on the solarize threshold may flip).
        for ours, ref in ((a1, a2), (b1, b2)):
            assert float(((ours - ref).abs() > 1e-5).float().mean()) < 1e-3


@pytest.mark.parametrize("hw", [(20, 26), (40, 52)])  # small: cropped whole like in memory; larger: cut by PIL
def test_folder_views_match_in_memory_views(tmp_path: Path, hw: tuple[int, int]) -> None:
    """A same-size PNG folder read by loader workers vs the same images in memory (matrix crops)."""
    images = _natural(40, *hw)
    files = ImageFiles(_write(images, tmp_path / "png"), list(range(40)))
    memory = TensorImages(images, torch.arange(40))
    for (a1, b1, l1), (a2, b2, l2) in zip(_batches(files, "auto"), _batches(memory, "auto")):
        assert torch.equal(l1, l2)
        for ours, ref in ((a1, a2), (b1, b2)):
            # The loader rounds its crop to uint8 (half a level), PIL and torch filter alike.
            diff = (ours - ref).abs()
            assert float(diff.mean()) < 1e-3 and float((diff > 4 / 255).float().mean()) < 0.005


@pytest.mark.parametrize("hw", [(18, 22), (40, 52)])
def test_views_do_not_depend_on_workers_or_processes(tmp_path: Path, hw: tuple[int, int]) -> None:
    images = _natural(32, *hw)
    files = ImageFiles(_write(images, tmp_path / "png"), list(range(32)))
    for data, pipeline in ((files, "auto"), (files, "per_image"), (TensorImages(images, torch.arange(32)), "auto")):
        reference = _batches(data, pipeline, workers=0, stop=4)
        with_workers = _batches(data, pipeline, workers=2, stop=4)
        shards = [_batches(data, pipeline, workers=1, stop=4, ranks=2, rank=r) for r in range(2)]
        for step, (a, b, labels) in enumerate(reference):
            assert torch.equal(a, with_workers[step][0]) and torch.equal(b, with_workers[step][1])
            for rank in range(2):  # rank r holds rows r, r+2, … of the global batch
                shard_a, _, shard_labels = shards[rank][step]
                assert torch.equal(shard_labels, labels[rank::2])
                assert torch.equal(shard_a, a[rank::2])


def test_resume_at_any_step_gives_the_same_batches(tmp_path: Path) -> None:
    files = ImageFiles(_write(_natural(24, 18, 22), tmp_path / "png"), list(range(24)))
    full = _batches(files, "auto", workers=1, stop=9)
    resumed = _batches(files, "auto", workers=1, start=4, stop=9)
    for (a, b, labels), (ra, rb, rlabels) in zip(full[4:], resumed):
        assert torch.equal(a, ra) and torch.equal(b, rb) and torch.equal(labels, rlabels)


class _WorkerPids(Dataset):
    """Labels are the process id of whoever loaded the item."""

    def __init__(self, count: int) -> None:
        self.images = _natural(count, 12, 12)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], os.getpid()


def test_loader_workers_persist_across_epochs() -> None:
    data = _WorkerPids(16)  # 2 steps per epoch: 5 epochs
    batches = _batches(data, "auto", workers=1, stop=10, size=8)
    pids = {int(pid) for _, _, labels in batches for pid in labels}
    assert len(pids) == 1 and pids != {os.getpid()}


def test_mixed_sizes_and_modes_share_one_batch(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sizes = [(30, 40), (64, 48), (17, 90), (40, 40), (25, 33), (50, 20), (33, 61), (90, 17)]
    paths = []
    for i, (h, w) in enumerate(sizes):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert(["RGB", "L", "P", "RGBA"][i % 4])
        path = folder / f"{i}.{'jpg' if i % 4 < 2 else 'png'}"
        image.save(path)
        paths.append(str(path))
    files = ImageFiles(paths)
    (a, b, labels), = _batches(files, "auto", workers=1, stop=1, size=24)
    assert a.shape == b.shape == (8, 3, 24, 24) and (labels == -1).all()
    assert 0 <= float(a.min()) and float(a.max()) <= 1


# ---------------------------------------------------------------- decoding crops


def _photo(path: Path, h: int, w: int, exif_orientation: int | None = None) -> Path:
    image = Image.fromarray(_natural(1, h, w, seed=h)[0].permute(1, 2, 0).numpy())
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(path, quality=95, exif=exif)
    return path


def test_load_crops_match_crops_of_the_full_decode(tmp_path: Path) -> None:
    """Large crops use JPEG draft decoding at 1/2 or 1/4 scale; the result stays close to a full decode."""
    path = _photo(tmp_path / "big.jpg", 480, 640)
    full = load_image(path).float()
    boxes = np.array([[0, 0, 480, 640], [100, 50, 300, 400], [200, 300, 40, 60]])
    crops = load_crops(path, lambda h, w: boxes, 64)
    assert crops.shape == (3, 3, 64, 64) and crops.dtype == torch.uint8
    for crop, (top, left, h, w) in zip(crops, boxes.tolist()):
        ref = TF.resize(full[:, top : top + h, left : left + w], [64, 64], InterpolationMode.BILINEAR, antialias=True)
        assert float((crop.float() - ref).abs().mean()) < 2.0  # uint8 levels


def test_load_crops_of_a_sideways_photo_use_the_upright_image(tmp_path: Path) -> None:
    path = _photo(tmp_path / "phone.jpg", 40, 60, exif_orientation=6)  # stored landscape, shown portrait
    seen = []

    def boxes(h: int, w: int) -> np.ndarray:
        seen.append((h, w))
        return np.array([[0, 0, h, w]])

    crop = load_crops(path, boxes, 30)
    assert seen == [(60, 40)]
    upright = load_image(path).float()
    ref = TF.resize(upright, [30, 30], InterpolationMode.BILINEAR, antialias=True)
    assert float((crop[0].float() - ref).abs().mean()) < 2.0


def test_a_crop_key_draws_the_same_boxes_in_every_process() -> None:
    view = ViewTransform(16)
    key = sample_key(3, 2, 11)
    assert np.array_equal(view.sample_crops([key], 0, 50, 70), view.sample_crops([key], 0, 50, 70))
    assert not np.array_equal(view.sample_crops([key], 0, 50, 70), view.sample_crops([key], 1, 50, 70))


def test_decoding_jpegs_on_the_device_gives_the_worker_views(tmp_path: Path) -> None:
    """``data.decode=device`` (torchvision.io.decode_jpeg; here on the CPU) against PIL in the workers."""
    images = _natural(16, 40, 52)
    paths = _write(images[:12], tmp_path / "mixed", ".jpg") + _write(images[12:], tmp_path / "png")
    paths[0] = str(_photo(tmp_path / "phone.jpg", 52, 40, exif_orientation=6))  # rotated: cropped by the worker
    files = ImageFiles(paths, list(range(16)))
    on_device = _batches(files, "auto", workers=1, stop=2, size=24, decode="device")
    in_workers = _batches(files, "auto", workers=1, stop=2, size=24)
    for (a1, b1, l1), (a2, b2, l2) in zip(on_device, in_workers):
        assert torch.equal(l1, l2)
        for ours, ref in ((a1, a2), (b1, b2)):  # two JPEG decoders, two resize codes: rounding apart
            diff = (ours - ref).abs()
            assert float(diff.mean()) < 4e-3 and float((diff > 8 / 255).float().mean()) < 0.01


def test_a_corrupt_jpeg_decoded_on_the_device_is_named(tmp_path: Path) -> None:
    paths = _write(_natural(8, 20, 20), tmp_path / "jpg", ".jpg")
    Path(paths[3]).write_bytes(Path(paths[3]).read_bytes()[:200] + bytes(300))
    with pytest.raises(Exception, match="cannot read image") as info:
        _batches(ImageFiles(paths), "auto", workers=0, stop=1, decode="device")
    assert paths[3] in str(info.value) and "\n" not in str(info.value)

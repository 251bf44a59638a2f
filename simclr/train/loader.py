"""Two-view batches for every step of a run, on the fast path whatever the data.

A sample's views depend only on its key (run seed, epoch, sample index), and the order only
on (seed, epoch) (``simclr.data.sampling``), so a run gives the same batches for any number
of loader workers and resumes exactly at any step; several processes draw the same parameters
too (in a folder that mixes small and large images, a small one may be rendered by the other
of the two crop filters, a few uint8 levels apart, since the choice is made per local batch). Datasets are stateless (the
epoch comes with the index), so one set of persistent loader workers serves the whole run.

Pipelines (``augment.pipeline``; ``auto`` is ``batched``):

- ``batched``, images in memory (mnist5k, CIFAR, STL-10): indexed directly, every op drawn
  and applied to the whole uint8 batch on the training device.
- ``batched``, files or other datasets: loader workers read a whole batch. Small images of
  one size are cropped whole like in-memory data; otherwise each image is decoded (JPEGs at
  reduced scale when the crops allow) and its two random resized crops cut to uint8
  ``size`` x ``size``, and flip, colour, grayscale, blur and solarize run batched. The views
  are finished on the training device, or in the workers when training on the CPU. With ``data.decode=device`` the workers only read JPEG files and their headers, and the
  JPEGs are decoded on the training device (``torchvision.io.decode_jpeg``: nvJPEG on CUDA).
- ``per_image``: the reference: workers render each view with torchvision ops.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from simclr.augment import BatchedTwoViewTransform, TwoViewTransform, sample_key, sample_keys
from simclr.augment.two_view import ViewPair
from simclr.data import ImageFiles, TensorImages
from simclr.data.images import crop_resize_uint8, decode_jpeg_crops
from simclr.data.sampling import RunSampler

PIPELINES = ("auto", "batched", "per_image")


def resolve_pipeline(pipeline: str) -> str:
    """``auto`` -> ``batched``; the name that goes into the saved config."""
    return "batched" if pipeline == "auto" else pipeline


class PerImagePairs(Dataset):
    """``(epoch, index)`` -> (view_a, view_b float32 [3, S, S], label): the per-image reference pipeline."""

    def __init__(self, base: Dataset, pair: ViewPair, seed: int) -> None:
        self.base, self.transform, self.seed = base, TwoViewTransform(pair.view_a, pair.view_b), seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor, int]:
        epoch, index = key
        image, label = self.base[index]
        view_a, view_b = self.transform(image, sample_key(self.seed, epoch, index))
        return view_a, view_b, int(label)


class CroppedPairs(Dataset):
    """``(epoch, index)`` -> (crop_a, crop_b uint8 [3, S, S], label, epoch, index): the two views'
    random resized crops, cut in the loader worker; the rest of each view is drawn on the device."""

    def __init__(self, base: Dataset, pair: ViewPair, seed: int) -> None:
        self.base, self.pair, self.seed = base, pair, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor, int, int, int]:
        epoch, index = key
        sample = sample_key(self.seed, epoch, index)
        size = self.pair.size

        def boxes_for(height: int, width: int) -> np.ndarray:
            return np.concatenate([self.pair.view_a.sample_crops([sample], 0, height, width),
                                   self.pair.view_b.sample_crops([sample], 1, height, width)])

        if isinstance(self.base, ImageFiles):
            crops, label = self.base.load_crops(index, boxes_for, size), int(self.base.labels[index])
        else:
            image, label = self.base[index]
            crops = torch.stack([crop_resize_uint8(image, box, size)
                                 for box in boxes_for(*image.shape[-2:]).tolist()])
        return crops[0], crops[1], int(label), epoch, index


class EncodedPairs(CroppedPairs):
    """``(epoch, index)`` -> (JPEG bytes uint8 [n], boxes int64 [2, 4], crops, label, epoch, index, path) for
    ``data.decode=device``: JPEGs are only read here and decoded on the training device; other
    files are cropped here as in ``CroppedPairs`` (then the bytes are empty)."""

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, np.ndarray, Tensor, int, int, int, str]:  # type: ignore[override]
        epoch, index = key
        path = self.base.paths[index]  # type: ignore[attr-defined]
        height, width, plain_jpeg = self.base.read_header(index)  # type: ignore[attr-defined]
        if not plain_jpeg:  # rotated, CMYK, or not a JPEG: decode and crop in this worker
            crop_a, crop_b, label, _, _ = super().__getitem__(key)
            return torch.empty(0, dtype=torch.uint8), np.zeros((2, 4), np.int64), torch.stack([crop_a, crop_b]), label, epoch, index, path
        with open(path, "rb") as handle:
            data = handle.read()
        sample = sample_key(self.seed, epoch, index)
        boxes = np.concatenate([self.pair.view_a.sample_crops([sample], 0, height, width),
                                self.pair.view_b.sample_crops([sample], 1, height, width)])
        empty = torch.empty(2, 3, self.pair.size, self.pair.size, dtype=torch.uint8)
        data_tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return data_tensor, boxes, empty, int(self.base.labels[index]), epoch, index, path  # type: ignore[attr-defined]


class ImageBatches(CroppedPairs):
    """A batch of keys ``[(epoch, index), …]`` -> one ``(images, crops, labels, keys)``, read in a loader worker.

    When the batch's images are small (area <= 4 x the view's) and of one size, ``images`` is
    them, uint8 [B, 3, H, W], to be cropped whole like in-memory data, and ``crops`` is None;
    otherwise ``crops`` holds both views' random resized crops, uint8 [B, 2, 3, S, S]
    (JPEGs decoded at reduced scale where the crops allow), and ``images`` is None. Crop
    boxes are drawn for the whole batch at once.
    """

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[tuple[Tensor | None, Tensor | None, Tensor, np.ndarray]]:
        epochs, indices = (np.array(column, dtype=np.int64) for column in zip(*keys))
        samples = sample_keys(self.seed, epochs, indices)
        files = self.base if isinstance(self.base, ImageFiles) else None
        decoded = None if files else [self.base[int(i)] for i in indices]
        labels = files.labels[indices] if files else torch.tensor([int(label) for _, label in decoded])  # type: ignore[union-attr]
        sizes = np.array([files.upright_size(int(i)) for i in indices] if files else [d[0].shape[-2:] for d in decoded])
        size = self.pair.size
        if (sizes == sizes[0]).all() and sizes[0].prod() <= 4 * size * size:
            images = [files[int(i)][0] for i in indices] if files else [image for image, _ in decoded]
            return [(torch.stack(images), None, labels, samples)]
        boxes = np.stack([self.pair.view_a.sample_crops(samples, 0, sizes[:, 0], sizes[:, 1]),
                          self.pair.view_b.sample_crops(samples, 1, sizes[:, 0], sizes[:, 1])], axis=1)  # [B, 2, 4]
        if files:
            crops = [files.load_crops(int(i), lambda h, w, k=k: boxes[k], size) for k, i in enumerate(indices)]
        else:
            crops = [torch.stack([crop_resize_uint8(image, box, size) for box in boxes[k].tolist()])
                     for k, (image, _) in enumerate(decoded)]
        return [(None, torch.stack(crops), labels, samples)]


class RenderBatch:
    """``ImageBatches``' batch -> (view_a, view_b, labels) on ``device``: where the views are finished.

    Used as the loader's collate function when training on the CPU (views finished in the
    worker) and called on the batch in the training process otherwise (on the accelerator).
    """

    def __init__(self, transform: BatchedTwoViewTransform, device: torch.device | None = None) -> None:
        self.transform, self.device = transform, device

    def __call__(self, batch: list[tuple[Tensor | None, Tensor | None, Tensor, np.ndarray]]) -> tuple[Tensor, Tensor, Tensor]:
        (images, crops, labels, keys), = batch
        move = (lambda x: x) if self.device is None else (lambda x: _to_device(x, self.device))
        if images is not None:
            return (*self.transform(move(images), keys), labels)
        crops = move(crops)
        return (*self.transform.from_crops(crops[:, 0], crops[:, 1], keys), labels)


class PretrainBatches:
    """This process's ``(view_a, view_b, labels)`` for each step of a run, views on ``device``.

    ``batch_size`` is the global batch; each process gets its shard (``RunSampler``).
    """

    def __init__(self, dataset: Dataset, pair: ViewPair, seed: int, batch_size: int, pipeline: str,
                 workers: int, device: torch.device, num_replicas: int = 1, rank: int = 0, decode: str = "cpu") -> None:
        self.dataset, self.seed, self.batch_size, self.decode = dataset, seed, batch_size, decode
        self.pipeline, self.workers, self.device = resolve_pipeline(pipeline), workers, device
        self.num_replicas, self.rank = num_replicas, rank
        self.transform = BatchedTwoViewTransform(pair.view_a, pair.view_b)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size  # type: ignore[arg-type]

    def iterate(self, start_step: int, stop_step: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Batches of steps ``start_step .. stop_step - 1``, in order."""
        sampler = RunSampler(len(self.dataset), self.batch_size, self.seed, start_step, stop_step,  # type: ignore[arg-type]
                             self.num_replicas, self.rank)
        if self.pipeline == "per_image":
            yield from self._load(PerImagePairs(self.dataset, self.transform, self.seed), sampler)
        elif isinstance(self.dataset, TensorImages):
            yield from self._in_memory(sampler)
        elif self.decode == "device" and isinstance(self.dataset, ImageFiles):
            yield from self._decoded_on_device(sampler)
        elif self.device.type == "cpu":
            # Training on the CPU, the workers finish the views too (batched ops, one thread each),
            # so the training process keeps its cores for the network.
            yield from self._load(ImageBatches(self.dataset, self.transform, self.seed), sampler,
                                  collate_fn=RenderBatch(self.transform))
        else:
            render = RenderBatch(self.transform, self.device)
            for batch in self._load(ImageBatches(self.dataset, self.transform, self.seed), sampler, collate_fn=_single):
                yield render([batch])

    def _in_memory(self, sampler: RunSampler) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        images, labels = self.dataset.images, self.dataset.labels  # type: ignore[attr-defined]
        for epoch, indices in sampler.steps():
            keys = sample_keys(self.seed, epoch, indices.numpy())
            view_a, view_b = self.transform(_to_device(images[indices], self.device), keys)
            yield view_a, view_b, labels[indices]

    def _decoded_on_device(self, sampler: RunSampler) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        loader = self._load(EncodedPairs(self.dataset, self.transform, self.seed), sampler, collate_fn=list)
        for items in loader:
            data, boxes, crops, labels, epochs, indices, paths = zip(*items)
            crops = _to_device(torch.stack(crops), self.device)  # [B, 2, 3, S, S]: non-JPEG files, cut by the worker
            jpegs = [i for i, encoded in enumerate(data) if encoded.numel()]
            if jpegs:
                decoded = decode_jpeg_crops([data[i] for i in jpegs], [boxes[i] for i in jpegs],
                                            [paths[i] for i in jpegs], self.transform.size, self.device)
                crops[jpegs] = torch.stack(decoded)
            keys = sample_keys(self.seed, np.array(epochs), np.array(indices))
            view_a, view_b = self.transform.from_crops(crops[:, 0], crops[:, 1], keys)
            yield view_a, view_b, torch.tensor(labels)

    def _load(self, dataset: Dataset, sampler: RunSampler, collate_fn: object = None) -> DataLoader:
        # One loader (one iterator) spans the run, so its workers persist across epochs.
        return DataLoader(dataset, batch_size=sampler.per_rank, sampler=sampler, num_workers=self.workers,
                          pin_memory=self.device.type == "cuda", drop_last=True,
                          persistent_workers=self.workers > 0, collate_fn=collate_fn)  # type: ignore[arg-type]


def _single(batch: list[tuple]) -> tuple:
    return batch[0]


def _to_device(images: Tensor, device: torch.device) -> Tensor:
    if device.type == "cuda":
        images = images.pin_memory()
    return images.to(device, non_blocking=True)

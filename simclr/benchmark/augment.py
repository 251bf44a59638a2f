"""Two-view augmentation throughput: batched vs per-image, same ops and sizes.

Pipelines, each producing two float32 views per uint8 source image:

- ``batched``: ``BatchedTwoViewTransform`` on the requested device, parameter sampling
  included (images already on the device: shipping them is the loader's cost);
- ``torchvision``: ``torchvision.transforms.v2`` applied per image on the CPU, as a loader
  worker runs it (RandomResizedCrop, flip, RandomApply(ColorJitter(0.8, 0.8, 0.8, 0.2),
  0.8), RandomGrayscale(0.2), GaussianBlur(p=0.5) when size > 32, ToDtype(float32));
- ``per_image``: simclr's own ``TwoViewTransform`` per image on the CPU.

Rates are images per second (one image = two views). The pipelines are timed in
interleaved rounds and each reports its median round, which damps the effect of other
processes on a shared machine.

    python -m simclr.benchmark.augment                         # 32 px, batch 256, CPU, 2 threads
    python -m simclr.benchmark.augment --image-size 224 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torchvision.transforms import v2

from simclr.augment import TwoViewTransform, ViewTransform
from simclr.augment.batched import BatchedTwoViewTransform
from simclr.benchmark.results import device_name
from simclr.errors import SimCLRError

_ROUNDS = 3
_PER_IMAGE_CHUNK = 32  # images per timed step of the per-image pipelines


def default_source_size(image_size: int) -> int:
    """Side of the square uint8 sources: the view size up to 32 px (CIFAR), else 8/7 of it."""
    return image_size if image_size <= 32 else round(image_size * 8 / 7)


def torchvision_pipeline(view: ViewTransform) -> v2.Compose:
    """torchvision v2 per-image equivalent of ``view`` (uint8 [3, H, W] -> float32)."""
    s = view.color_strength
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(
            view.size, scale=view.crop_scale, ratio=view.crop_ratio, antialias=True
        ),
        v2.RandomHorizontalFlip(view.flip_p),
        v2.RandomApply(
            [v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5))], p=view.color_p
        ),
        v2.RandomGrayscale(view.gray_p),
    ]
    if view.blur_p > 0.0:
        k = view.blur_kernel_size
        steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=view.blur_sigma)], p=view.blur_p))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(steps)


def bench_augmentation(
    image_size: int,
    batch_size: int,
    device: str,
    threads: int | None,
    seconds: float,
    source_size: int | None = None,
) -> dict[str, object]:
    """Images/s of the batched, torchvision per-image and simclr per-image pipelines.

    ``device`` is where the batched pipeline runs ("cpu", "cuda", ...); the per-image
    pipelines always run on the CPU. ``threads`` sets torch's CPU threads for the
    measurement (None: leave as is). ``seconds`` is the total timing budget per pipeline.
    Sources are random uint8 [batch_size, 3, source_size, source_size] images.
    Returns a flat dict of settings and rates with ``ratio`` = batched / torchvision.
    """
    if image_size < 1 or batch_size < 1 or seconds <= 0 or (threads is not None and threads < 1):
        raise SimCLRError(
            f"need image_size, batch_size, threads >= 1 and seconds > 0, got "
            f"{image_size}, {batch_size}, {threads}, {seconds}"
        )
    source = default_source_size(image_size) if source_size is None else source_size
    try:
        target = torch.device(device)
        torch.empty(0, device=target)
    except (RuntimeError, AssertionError) as error:
        raise SimCLRError(f"device {device!r} is not available: {error}".splitlines()[0]) from None
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        rates = _measure(image_size, batch_size, target, source, seconds)
    finally:
        torch.set_num_threads(previous_threads)
    return {
        "image_size": image_size,
        "source_size": source,
        "batch_size": batch_size,
        "device": str(target),
        "device_name": device_name(target),
        "threads": torch.get_num_threads() if threads is None else threads,
        **{f"{name}_images_per_s": round(rate, 1) for name, rate in rates.items()},
        "ratio": round(rates["batched"] / rates["torchvision"], 2),
        "torch": torch.__version__,
    }


def _measure(
    image_size: int, batch_size: int, device: torch.device, source: int, seconds: float
) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    shape = (batch_size, 3, source, source)
    images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    view = ViewTransform(image_size)
    batched, per_image = BatchedTwoViewTransform(view), TwoViewTransform(view)
    tv = torchvision_pipeline(view)
    on_device = images.to(device)
    counter = iter(range(1 << 62))

    def run_batched() -> int:
        base = next(counter) * batch_size
        batched(on_device, range(base, base + batch_size))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return batch_size

    def run_per_image(fn: Callable[[torch.Tensor, int], object]) -> Callable[[], int]:
        def step() -> int:
            base = next(counter) * _PER_IMAGE_CHUNK
            for i in range(_PER_IMAGE_CHUNK):
                fn(images[(base + i) % batch_size], base + i)
            return _PER_IMAGE_CHUNK

        return step

    steps = {
        "batched": run_batched,
        "torchvision": run_per_image(lambda image, seed: (tv(image), tv(image))),
        "per_image": run_per_image(per_image),
    }
    for step in steps.values():  # warm-up: first calls allocate and pick kernels
        step()
    rounds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(_ROUNDS):
        for name, step in steps.items():
            rounds[name].append(_rate(step, seconds / _ROUNDS))
    return {name: statistics.median(values) for name, values in rounds.items()}


def _rate(step: Callable[[], int], seconds: float) -> float:
    """Images/s of repeated ``step()`` calls (each returns its image count) for ``seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per configuration (default: 32 px CPU, plus 224 px CUDA if present)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, action="append", help="view side (repeatable)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="timing budget per pipeline")
    args = parser.parse_args(argv)
    if args.device is not None:
        configs = [(size, args.device) for size in args.image_size or [32]]
    else:
        configs = [(size, "cpu") for size in args.image_size or [32]]
        if torch.cuda.is_available():
            configs += [(size, "cuda") for size in args.image_size or [224]]
    for size, device in configs:
        row = bench_augmentation(size, args.batch_size, device, args.threads, args.seconds)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

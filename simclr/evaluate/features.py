"""Frozen features h of a labelled dataset, extracted once for the evaluation protocols."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from simclr import distributed
from simclr.augment import EvalTransform
from simclr.models import SimCLR


class _Evaluated(Dataset):
    def __init__(self, base: Dataset, transform: EvalTransform) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.base[index]
        return self.transform(image), int(label)


@torch.no_grad()
def extract_features(
    model: SimCLR,
    dataset: Dataset,
    image_size: int,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Encoder outputs for every item, in dataset order: (h [N, D] fp32 on CPU, labels [N] int64).

    With several processes each encodes its shard and every process gets the whole result.
    """
    was_training = model.training
    model.eval()
    size = len(dataset)  # type: ignore[arg-type]
    local = Subset(_Evaluated(dataset, EvalTransform(image_size)), distributed.shard(size))
    loader = DataLoader(local, batch_size=batch_size, num_workers=workers)
    features, labels = [], []
    for images, targets in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not distributed.is_main()):
        features.append(model.encode(images.to(device, non_blocking=True)).float())
        labels.append(targets.to(device))
    model.train(was_training)
    # Collectives run on the device the backend wants (NCCL: the GPU); results come back to the CPU.
    gathered_features = distributed.gather_in_order(torch.cat(features), size).cpu()
    return gathered_features, distributed.gather_in_order(torch.cat(labels).long(), size).cpu()

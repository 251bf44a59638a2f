"""End-to-end classifier training: fine-tuning (paper B.5), the supervised baseline, the augmented probe.

One loop serves the three: crop+flip views seeded per sample, SGD with Nesterov momentum,
LR = base·B/256 decayed by a cosine to 0, a fixed number of epochs, and the weights of the last
epoch (nothing is chosen by looking at the test split). A frozen encoder (linear evaluation the
paper's way) stays in eval mode and gets no gradient; otherwise BatchNorm trains as usual.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from simclr.augment import ViewTransform, sample_key
from simclr.data.sampling import epoch_order
from simclr.errors import SimCLRError
from simclr.evaluate.features import extract_features
from simclr.evaluate.knn import topk_accuracy
from simclr.models import SimCLR
from simclr.optim import parameter_groups, set_lr, warmup_cosine_lr


class Standardize(nn.Module):
    """Fixed (h - mean) / std with training statistics: an affine map, so the probe stays linear in h."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().float().clone())
        self.register_buffer("std", std.detach().float().clone())

    def forward(self, h: Tensor) -> Tensor:
        return (h - self.mean) / self.std


class Classifier(nn.Module):
    """images [B,3,H,W] in [0,1] -> logits [B, C]: normalise, encoder f, neck, linear layer.

    ``neck`` is Identity (fine-tune from h), the projection head's first layers (SimCLR v2's
    fine-tuning from a head layer) or ``Standardize`` (linear probe). ``frozen`` keeps the
    encoder and neck fixed and in eval mode: only the linear layer learns.
    """

    def __init__(self, normalize: nn.Module, encoder: nn.Module, neck: nn.Module, in_dim: int, num_classes: int, frozen: bool = False) -> None:
        super().__init__()
        self.normalize, self.encoder, self.neck = normalize, encoder, neck
        self.fc = nn.Linear(in_dim, num_classes)
        self.frozen = frozen
        if frozen:
            for parameter in [*encoder.parameters(), *neck.parameters()]:
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.frozen:  # frozen BatchNorm keeps its running statistics
            self.encoder.eval()
            self.neck.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        """x: [B,3,H,W] -> the classifier's input [B, in_dim]."""
        return self.neck(self.encoder(self.normalize(x)))

    def forward(self, x: Tensor) -> Tensor:
        """x: [B,3,H,W] in [0,1] -> logits [B, C]."""
        if self.frozen:
            with torch.no_grad():
                features = self.features(x)
            return self.fc(features)
        return self.fc(self.features(x))


def head_layers(model: SimCLR, count: int) -> nn.Module:
    """The first ``count`` hidden blocks (Linear, BN, ReLU) of an MLP head, copied; Identity for 0."""
    if count == 0:
        return nn.Identity()
    blocks = list(model.head.layers.children())[:-1] if model.head.kind == "mlp" else []
    if 3 * count > len(blocks):
        raise SimCLRError(f"from_head_layer must be in [0, {len(blocks) // 3}] for this projection head, got {count}")
    return copy.deepcopy(nn.Sequential(*blocks[: 3 * count]))


def feature_layers(model: SimCLR) -> tuple[str, ...]:
    """The layers a frozen-encoder probe can read: ``h``, ``head1`` .. ``headK`` (the MLP head's hidden layers), ``z``."""
    hidden = len(list(model.head.layers.children())[:-1]) // 3 if model.head.kind == "mlp" else 0
    return ("h", *(f"head{k}" for k in range(1, hidden + 1)), "z")


def feature_neck(model: SimCLR, name: str) -> nn.Module:
    """h -> the output of layer ``name`` as a copied module: Identity for ``h``, the head's first
    K blocks (Linear, BN, ReLU) for ``headK``, the whole head g for ``z``."""
    if name not in feature_layers(model):
        raise SimCLRError(f"eval.features must be one of {', '.join(feature_layers(model))} for this projection head, got '{name}'")
    if name == "z":
        return copy.deepcopy(model.head)
    return head_layers(model, 0 if name == "h" else int(name.removeprefix("head")))


@torch.no_grad()
def layer_features(model: SimCLR, name: str, h: Tensor) -> Tensor:
    """Features of layer ``name`` from cached h [N, D] (the head in eval mode, on h's device): [N, D']."""
    if name == "h":
        return h
    neck = feature_neck(model, name).to(h.device).eval()
    return neck(h).float()


def build_classifier(model: SimCLR, num_classes: int, from_head_layer: int = 0, frozen: bool = False, neck: nn.Module | None = None,
                     in_dim: int | None = None) -> Classifier:
    """A classifier over copies of ``model``'s normalisation, encoder (and head layers): ``model`` is untouched.

    ``in_dim``: the width ``neck`` outputs, when a given neck changes it (default: h's, or the head layer's).
    """
    neck = neck if neck is not None else head_layers(model, from_head_layer)
    in_dim = in_dim or model.feature_dim
    if from_head_layer:
        in_dim = [m for m in neck.modules() if isinstance(m, nn.Linear)][-1].out_features
    return Classifier(copy.deepcopy(model.normalize), copy.deepcopy(model.encoder), neck, in_dim, num_classes, frozen)


def count_parameters(module: nn.Module) -> int:
    """Parameters of ``module`` (trainable or not): the size of the network that is evaluated."""
    return sum(p.numel() for p in module.parameters())


class CropFlipViews(Dataset):
    """Item ``e * N + i`` is a crop+flip view of item i of ``base`` (N items) as seen in epoch e.

    (uint8 image [3,H,W], label) -> (view [3,S,S] float in [0,1], label). The view depends only
    on (seed, e, i), so it does not depend on the number of workers, and one loader (one set of
    worker processes) serves every epoch.
    """

    def __init__(self, base: Dataset, view: ViewTransform, seed: int) -> None:
        self.base, self.view, self.seed = base, view, seed
        self.size = len(base)  # type: ignore[arg-type]

    def __getitem__(self, key: int) -> tuple[Tensor, int]:
        epoch, index = divmod(key, self.size)
        image, label = self.base[index]
        return self.view(image, sample_key(self.seed, epoch, index)), int(label)


def crop_flip(size: int, crop_scale: tuple[float, float], crop_ratio: tuple[float, float], flip_p: float) -> ViewTransform:
    """Random resized crop + horizontal flip only: no colour, grayscale, blur or solarize."""
    return ViewTransform(size, crop_scale, crop_ratio, flip_p, color_p=0.0, gray_p=0.0, blur_p=0.0)


def train_classifier(
    network: Classifier,
    dataset: Dataset,
    view: ViewTransform,
    epochs: int,
    batch_size: int,
    base_lr: float,
    weight_decay: float,
    seed: int,
    device: torch.device,
    workers: int = 0,
    momentum: float = 0.9,
) -> dict[str, float]:
    """Train ``network`` in place on crop+flip views of ``dataset`` for ``epochs`` epochs.

    Batches of ``B = min(batch_size, N)`` images in a seeded order (whole batches only, so
    BatchNorm never sees a batch of one); peak LR ``base_lr * B / 256``, cosine to 0, no
    warm-up; weight decay on ``ndim > 1`` parameters only. Returns steps, peak LR and the
    mean loss of the last epoch.
    """
    network.to(device).train()
    views = CropFlipViews(dataset, view, seed)
    batch = min(batch_size, views.size)
    # Each epoch's seeded order holds whole batches only, so no batch spans two epochs.
    order = [epoch * views.size + i for epoch in range(epochs) for i in epoch_order(views.size, seed, epoch)[: views.size // batch * batch].tolist()]
    total, peak = len(order) // batch, base_lr * batch / 256
    optimizer = torch.optim.SGD(parameter_groups(network, weight_decay), lr=peak, momentum=momentum, nesterov=True)
    losses = []
    loader = DataLoader(views, batch_size=batch, sampler=order, num_workers=workers)
    for step, (images, labels) in enumerate(tqdm(loader, desc="train classifier", leave=False, dynamic_ncols=True)):
        set_lr(optimizer, warmup_cosine_lr(step, total, 0, peak))
        loss = F.cross_entropy(network(images.to(device)), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    last_epoch = losses[-(total // max(1, epochs)):] if losses else [torch.zeros(())]
    return {"steps": total, "peak_lr": peak, "last_epoch_loss": torch.stack(last_epoch).mean().item()}


class _LogitsAsFeatures(nn.Module):
    """Lets ``extract_features`` run a classifier over a split: its "features" are logits [B, C]."""

    def __init__(self, network: Classifier) -> None:
        super().__init__()
        self.network = network

    def encode(self, x: Tensor) -> Tensor:
        return self.network(x)


def classifier_accuracy(network: Classifier, dataset: Dataset, image_size: int, device: torch.device, batch_size: int = 256, workers: int = 0) -> dict[str, float]:
    """Top-1 / top-5 of ``network`` (eval mode, resize + centre crop) on a labelled split."""
    scores, labels = extract_features(_LogitsAsFeatures(network), dataset, image_size, device, batch_size, workers, desc="predict")  # type: ignore[arg-type]
    return {"top1": topk_accuracy(scores, labels, 1), "top5": topk_accuracy(scores, labels, 5)}

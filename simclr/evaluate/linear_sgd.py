"""Linear evaluation as the paper runs it (Appendix B.6): SGD with Nesterov momentum on frozen h.

This is the fast path on cached features: h of every training image is computed once (no
augmentation) and the classifier is trained on those rows. The paper's way, with crop+flip
views through the frozen encoder, is ``simclr.evaluate.classifier`` with a frozen encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from simclr.evaluate.linear import score_linear
from simclr.optim import set_lr, warmup_cosine_lr

LINEAR_SOLVERS: tuple[str, ...] = ("sgd", "lbfgs")
LINEAR_VIEWS: tuple[str, ...] = ("auto", "cached", "augmented")


def standardisation(features: Tensor) -> tuple[Tensor, Tensor]:
    """Per-dimension (mean [D], std [D]) of training features [N, D]; std floored at 1e-6.

    Dividing by fixed training statistics is an affine map of h, so the classifier stays
    linear in h; it only makes the step size independent of the encoder's feature scale.
    """
    return features.mean(0), features.std(0).clamp_min(1e-6)


def fit_linear_sgd(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    epochs: int = 90,
    batch_size: int = 256,
    base_lr: float = 0.1,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Softmax regression on standardised features with Nesterov SGD and a cosine schedule.

    features [N, D], labels [N] in 0..C-1. The peak LR is ``base_lr * B / 256`` with
    ``B = min(batch_size, N)``; it decays to 0 over ``epochs`` (no warm-up, as the paper).
    ``weight_decay`` penalises the weight only (wd/2·‖W‖²), like the L-BFGS solver, so both
    minimise the same objective. Minibatch order comes from ``seed``; the last epoch's weights
    are returned (no selection). Returns (weight [C, D], bias [C], mean [D], std [D]).
    """
    mean, std = standardisation(features)
    x = (features - mean) / std
    n = x.shape[0]
    batch = min(batch_size, n)
    steps_per_epoch = -(-n // batch)  # every row is seen once an epoch; the last batch may be short
    total = epochs * steps_per_epoch
    peak = base_lr * batch / 256
    weight = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.SGD(
        [{"params": [weight], "weight_decay": weight_decay}, {"params": [bias], "weight_decay": 0.0}],
        lr=peak, momentum=momentum, nesterov=True,
    )
    generator = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        for rows in torch.randperm(n, generator=generator).to(x.device).split(batch):
            set_lr(optimizer, warmup_cosine_lr(step, total, 0, peak))
            loss = F.cross_entropy(x[rows] @ weight.T + bias, labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    return weight.detach(), bias.detach(), mean, std


def linear_sgd_evaluate(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    epochs: int = 90,
    batch_size: int = 256,
    base_lr: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """Train on the train features [N, D] for a fixed budget, report top-1 / top-5 on the test ones [M, D]."""
    train_features, test_features = train_features.float(), test_features.float()
    classifier = fit_linear_sgd(train_features, train_labels, num_classes, epochs, batch_size, base_lr, weight_decay, seed=seed)
    return score_linear(classifier, train_features, train_labels, test_features, test_labels)

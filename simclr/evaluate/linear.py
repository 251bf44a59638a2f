"""Linear evaluation: multinomial logistic regression on frozen features, trained to convergence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from simclr.evaluate.knn import topk_accuracy


def fit_logistic_regression(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight_decay: float = 1e-4,
    max_iter: int = 500,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Full-batch L-BFGS on standardised features; returns (weight [C,D], bias [C], mean [D], std [D]).

    The objective (mean cross-entropy + wd/2·‖W‖²) is strictly convex, so L-BFGS reaches
    its optimum; features are standardised with the training statistics only.
    """
    mean = features.mean(0)
    std = features.std(0).clamp_min(1e-6)
    x = (features - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
        history_size=20, line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + 0.5 * weight_decay * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach(), mean, std


def linear_evaluate(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    weight_decay: float = 1e-4,
    max_iter: int = 500,
) -> dict[str, float]:
    """Train on the train features, report top-1 / top-5 on the test features (no selection on test)."""
    train_features, test_features = train_features.float(), test_features.float()
    classifier = fit_logistic_regression(train_features, train_labels, num_classes, weight_decay, max_iter)
    return score_linear(classifier, train_features, train_labels, test_features, test_labels)


@torch.no_grad()
def score_linear(
    classifier: tuple[Tensor, Tensor, Tensor, Tensor],
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
) -> dict[str, float]:
    """Test top-1 / top-5 and train top-1 of a (weight [C,D], bias [C], mean [D], std [D]) classifier."""
    weight, bias, mean, std = classifier
    test_scores = ((test_features - mean) / std) @ weight.T + bias
    train_scores = ((train_features - mean) / std) @ weight.T + bias
    return {
        "top1": topk_accuracy(test_scores, test_labels, 1),
        "top5": topk_accuracy(test_scores, test_labels, 5),
        "train_top1": topk_accuracy(train_scores, train_labels, 1),
    }

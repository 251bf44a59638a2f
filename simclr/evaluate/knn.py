"""Weighted cosine k-nearest-neighbour classification (Wu et al. 2018), as SSL papers report it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def knn_predict_scores(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> Tensor:
    """Class scores [M, C]: each of the k most cosine-similar training rows votes exp(sim/τ).

    train_features [N, D], train_labels [N] in 0..C-1, test_features [M, D].
    """
    bank = F.normalize(train_features.float(), dim=1)
    k = min(k, bank.shape[0])
    scores = []
    for queries in F.normalize(test_features.float(), dim=1).split(chunk_size):
        similarity, neighbour = (queries @ bank.T).topk(k, dim=1)
        votes = torch.zeros(queries.shape[0], num_classes, device=queries.device)
        votes.scatter_add_(1, train_labels[neighbour], (similarity / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def topk_accuracy(scores: Tensor, labels: Tensor, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores (k capped at the class count)."""
    k = min(k, scores.shape[1])
    hits = (scores.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return hits.float().mean().item()


def knn_evaluate(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> dict[str, float]:
    """kNN top-1 / top-5 accuracy on the test rows."""
    scores = knn_predict_scores(train_features, train_labels, test_features, num_classes, k, temperature)
    return {"top1": topk_accuracy(scores, test_labels, 1), "top5": topk_accuracy(scores, test_labels, 5)}

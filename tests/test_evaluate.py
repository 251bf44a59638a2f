"""Evaluation protocols against independent references: brute-force kNN and scikit-learn."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from simclr.evaluate import fit_logistic_regression, knn_evaluate, knn_predict_scores, linear_evaluate, topk_accuracy


def _naive_knn_scores(bank, bank_labels, queries, classes, k, t):
    scores = torch.zeros(len(queries), classes, dtype=torch.float64)
    for i, q in enumerate(queries.double()):
        sims = [(float(q @ b / (q.norm() * b.norm())), int(y)) for b, y in zip(bank.double(), bank_labels)]
        for sim, label in sorted(sims, reverse=True)[:k]:
            scores[i, label] += math.exp(sim / t)
    return scores


def test_knn_scores_match_brute_force():
    g = torch.Generator().manual_seed(0)
    bank, labels, queries = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g), torch.randn(7, 6, generator=g)
    ours = knn_predict_scores(bank, labels, queries, 3, k=5, temperature=0.1, chunk_size=3)
    torch.testing.assert_close(ours.double(), _naive_knn_scores(bank, labels, queries, 3, 5, 0.1), rtol=1e-4, atol=1e-4)


def test_knn_on_separable_clusters_is_perfect():
    centres = torch.eye(4) * 10
    bank = centres.repeat_interleave(10, 0) + torch.randn(40, 4) * 0.1
    labels = torch.arange(4).repeat_interleave(10)
    result = knn_evaluate(bank, labels, centres + 0.05, torch.arange(4), 4, k=5)
    assert result == {"top1": 1.0, "top5": 1.0}


def test_topk_accuracy():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    assert topk_accuracy(scores, torch.tensor([2, 0]), 1) == 0.5
    assert topk_accuracy(scores, torch.tensor([2, 0]), 2) == 1.0
    assert topk_accuracy(scores, torch.tensor([2, 1]), 5) == 1.0  # k capped at the class count


def test_logistic_regression_reaches_scikit_learn_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)) + np.repeat(np.eye(3, 8) * 2, 100, axis=0)
    y = np.repeat(np.arange(3), 100)
    weight_decay = 1e-2
    w, b, mean, std = fit_logistic_regression(torch.tensor(x, dtype=torch.float64), torch.tensor(y), 3, weight_decay, 1000)
    standardised = (x - x.mean(0)) / x.std(0, ddof=1)
    # Same objective: mean cross-entropy + wd/2 |W|^2  <=>  C = 1 / (n * wd), intercept unpenalised.
    reference = LogisticRegression(C=1 / (len(y) * weight_decay), tol=1e-10, max_iter=10_000).fit(standardised, y)
    ours = w.numpy() - w.numpy().mean(0)  # softmax weights are defined up to a per-feature shift
    theirs = reference.coef_ - reference.coef_.mean(0)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_linear_evaluate_learns_a_linear_rule():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    result = linear_evaluate(x[:300], y[:300], x[300:], y[300:], 2)
    assert result["top1"] > 0.95 and result["train_top1"] > 0.95


@pytest.mark.parametrize("k", [1, 3])
def test_knn_with_k_one_is_nearest_neighbour(k):
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    scores = knn_predict_scores(bank, torch.tensor([0, 1, 2]), torch.tensor([[1.0, 0.1]]), 3, k=k)
    assert scores.argmax().item() == 0

"""Evaluation protocols on frozen features: linear probe and weighted kNN."""

from simclr.evaluate.features import extract_features
from simclr.evaluate.knn import knn_evaluate, knn_predict_scores, topk_accuracy
from simclr.evaluate.linear import fit_logistic_regression, linear_evaluate

__all__ = [
    "extract_features",
    "fit_logistic_regression",
    "knn_evaluate",
    "knn_predict_scores",
    "linear_evaluate",
    "topk_accuracy",
]

"""Evaluation protocols: linear probe (SGD or L-BFGS), weighted kNN, fine-tuning, supervised baseline.

The pieces here take plain tensors, datasets and networks; ``simclr.evaluate.protocols`` and
``simclr.evaluate.run`` assemble them from a run's config.
"""

from simclr.evaluate.classifier import (
    Classifier,
    build_classifier,
    classifier_accuracy,
    count_parameters,
    train_classifier,
)
from simclr.evaluate.features import extract_features
from simclr.evaluate.knn import knn_evaluate, knn_predict_scores, topk_accuracy
from simclr.evaluate.linear import fit_logistic_regression, linear_evaluate
from simclr.evaluate.linear_sgd import fit_linear_sgd, linear_sgd_evaluate
from simclr.evaluate.results import PROTOCOLS, ResultRow, format_table, write_results

__all__ = [
    "PROTOCOLS",
    "Classifier",
    "ResultRow",
    "build_classifier",
    "classifier_accuracy",
    "count_parameters",
    "extract_features",
    "fit_linear_sgd",
    "fit_logistic_regression",
    "format_table",
    "knn_evaluate",
    "knn_predict_scores",
    "linear_evaluate",
    "linear_sgd_evaluate",
    "topk_accuracy",
    "train_classifier",
    "write_results",
]

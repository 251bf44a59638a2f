"""Seeing what a run learned: an HTML report of its curves, augmentations, embedding map and
nearest neighbours, and features of whole datasets saved for downstream use."""

from simclr.report.build import write_report
from simclr.report.embeddings import Embeddings, embed_splits, save_embeddings

__all__ = ["Embeddings", "embed_splits", "save_embeddings", "write_report"]

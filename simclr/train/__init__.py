"""Pretraining: the loop (``trainer``), its loader, checkpoints, metrics and plots."""

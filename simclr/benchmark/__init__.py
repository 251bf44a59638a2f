"""Throughput measurements that return plain dicts and write no files.

- ``simclr.benchmark.augment.bench_augmentation``: two-view augmentation images/s,
  batched vs per-image (run ``python -m simclr.benchmark.augment``).
"""

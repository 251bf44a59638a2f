"""SimCLR data augmentation (Chen et al. 2020, arXiv 2002.05709, Appendix A).

- ``ViewTransform``: one random view (crop+resize, flip, colour distortion, grayscale,
  blur, solarize); ``sample`` draws ``ViewParams`` for a batch of sample keys and
  ``apply`` renders one row per image (the per-image reference pipeline).
- ``TwoViewTransform``: the positive pair of views of one image and key; ``EvalTransform``:
  deterministic resize + centre crop for evaluation.
- ``BatchedTwoViewTransform``: the same pairs for a whole uint8 batch [B, 3, H, W] at once,
  on the batch's device (``from_crops`` for views the loader cropped already);
  ``render_views`` applies given parameters to a batch.
- ``sample_key`` / ``sample_keys``: a sample's 64-bit key from (run seed, epoch, index), the
  only source of a view's randomness: views depend neither on workers, GPUs nor the batch.

Images go in as uint8 [3, H, W] and come out as float32 [3, size, size] in [0, 1].
"""

from simclr.augment.batched import BatchedTwoViewTransform, render_views
from simclr.augment.keys import sample_key, sample_keys
from simclr.augment.two_view import EvalTransform, TwoViewTransform
from simclr.augment.view import ViewParams, ViewTransform

__all__ = [
    "BatchedTwoViewTransform",
    "EvalTransform",
    "TwoViewTransform",
    "ViewParams",
    "ViewTransform",
    "render_views",
    "sample_key",
    "sample_keys",
]

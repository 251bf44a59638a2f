"""SimCLR data augmentation (Chen et al. 2020, arXiv 2002.05709, Appendix A).

- ``ViewTransform``: one random view (crop+resize, flip, colour distortion, grayscale,
  blur, solarize) whose randomness comes only from an explicit ``torch.Generator``;
  ``sample`` returns the drawn ``ViewParams`` and ``apply`` renders them.
- ``TwoViewTransform``: the positive pair of views, determined by one integer seed.
- ``BatchedTwoViewTransform``: the same pairs for a whole uint8 batch [B, 3, H, W] at once,
  on the batch's device, with the per-image parameters of each seed (``BatchViewParams``);
  ``render_views`` applies given parameters to a batch.
- ``EvalTransform``: deterministic resize + centre crop for evaluation.
- ``view_seed`` / ``make_generator``: per-sample seeds from (run seed, epoch, index),
  so augmentations do not depend on the number of workers or GPUs.
- ``save_augmentation_grid``: a PNG of originals and views for visual checks.

Images go in as uint8 [3, H, W] and come out as float32 [3, size, size] in [0, 1].
"""

from simclr.augment.batch_params import BatchViewParams
from simclr.augment.batched import BatchedTwoViewTransform, render_views
from simclr.augment.grid import save_augmentation_grid
from simclr.augment.seeding import make_generator, view_seed
from simclr.augment.two_view import EvalTransform, TwoViewTransform
from simclr.augment.view import ViewParams, ViewTransform

__all__ = [
    "BatchViewParams",
    "BatchedTwoViewTransform",
    "EvalTransform",
    "TwoViewTransform",
    "ViewParams",
    "ViewTransform",
    "make_generator",
    "render_views",
    "save_augmentation_grid",
    "view_seed",
]

"""SimCLR data augmentation (Chen et al. 2020, arXiv 2002.05709, Appendix A).

- ``ViewTransform``: one random view (crop+resize, flip, colour distortion, grayscale,
  blur, solarize) whose randomness comes only from an explicit ``torch.Generator``;
  ``sample`` returns the drawn ``ViewParams`` and ``apply`` renders them.
- ``TwoViewTransform``: the positive pair of views, determined by one integer seed.
- ``EvalTransform``: deterministic resize + centre crop for evaluation.
- ``view_seed`` / ``make_generator``: per-sample seeds from (run seed, epoch, index),
  so augmentations do not depend on the number of workers or GPUs.
- ``save_augmentation_grid``: a PNG of originals and views for visual checks.

Images go in as uint8 [3, H, W] and come out as float32 [3, size, size] in [0, 1].
"""

from simclr.augment.grid import save_augmentation_grid
from simclr.augment.seeding import make_generator, view_seed
from simclr.augment.two_view import EvalTransform, TwoViewTransform
from simclr.augment.view import ViewParams, ViewTransform

__all__ = [
    "EvalTransform",
    "TwoViewTransform",
    "ViewParams",
    "ViewTransform",
    "make_generator",
    "save_augmentation_grid",
    "view_seed",
]

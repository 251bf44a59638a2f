"""simclr: SimCLR (Chen et al., ICML 2020) in plain PyTorch.

The parts of the method, usable in your own training loop::

    from simclr import SimCLR, build_simclr, NTXentLoss, LARS, TwoViewTransform, ViewTransform

and a trained encoder in yours: ``simclr.load_encoder(path)`` (images in [0,1] -> h).
"""

from simclr import distributed
from simclr.augment import BatchedTwoViewTransform, EvalTransform, TwoViewTransform, ViewTransform
from simclr.config import Config
from simclr.errors import SimCLRError
from simclr.export import ImageEncoder, load_encoder
from simclr.loss import NTXentLoss, nt_xent
from simclr.models import SimCLR, build_encoder, build_simclr
from simclr.optim import LARS

__version__ = "0.1.0"  # pyproject.toml reads it from here
# The name to pip-install (PyPI's "simclr" is an unrelated project); the import name is `simclr`.
DISTRIBUTION = "simclr-torch"

__all__ = [
    "BatchedTwoViewTransform",
    "LARS",
    "Config",
    "EvalTransform",
    "ImageEncoder",
    "NTXentLoss",
    "SimCLR",
    "SimCLRError",
    "TwoViewTransform",
    "ViewTransform",
    "build_encoder",
    "build_simclr",
    "distributed",
    "load_encoder",
    "nt_xent",
]

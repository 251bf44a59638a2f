"""Datasets for SimCLR: every item is ``(uint8 image [3, H, W], int label)``, label -1 if unlabeled."""
from simclr.data.datasets import DataSplits, ImageFiles, TensorImages
from simclr.data.images import IMG_EXTENSIONS, is_image_file, load_image
from simclr.data.registry import BUILTIN, TORCHVISION, load_data
from simclr.data.splits import balanced_subset, stratified_split

__all__ = [
    "BUILTIN",
    "IMG_EXTENSIONS",
    "TORCHVISION",
    "DataSplits",
    "ImageFiles",
    "TensorImages",
    "balanced_subset",
    "is_image_file",
    "load_data",
    "load_image",
    "stratified_split",
]

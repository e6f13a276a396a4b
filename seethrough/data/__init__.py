"""Data: every source becomes one :class:`ImageDataset`."""

from .dataset import ImageDataset, split_indices
from ..errors import SkippedImageWarning
from .images import array_to_input, load_image
from .registry import DATASETS, list_datasets, load_dataset, load_splits

__all__ = ["ImageDataset", "split_indices", "SkippedImageWarning", "array_to_input", "load_image",
           "DATASETS", "list_datasets", "load_dataset", "load_splits"]

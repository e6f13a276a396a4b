"""ImageDataset: the one type every data source becomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError


def split_indices(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (rest, held_out) index arrays, each sorted; deterministic given ``seed``.

    Every class with at least two images keeps at least one on each side.
    """
    if not 0 < fraction < 1:
        raise DataError(f"split fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n = min(max(n, 1), len(idx) - 1)
        held.append(idx[:n])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[held] = False
    return np.flatnonzero(mask), held


@dataclass
class ImageDataset:
    """Images with integer labels and class names.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W, C)
        Pixels, in memory or memory-mapped. C is 1 (grayscale) or 3 (RGB).
    labels : ndarray of int64, shape (N,)
        Class indices into ``class_names``.
    class_names : list of str
    name : str
        Where the data came from, e.g. ``"digits"`` or ``"folder:/path/photos"``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    name: str = "data"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim == 3:
            self.images = self.images[..., None]  # (N, H, W) -> (N, H, W, 1)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DataError(
                f"{self.name}: images must be uint8 of shape (N, H, W, C), got "
                f"{self.images.dtype} {self.images.shape}"
            )
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.labels) != len(self.images):
            raise DataError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index, name: str | None = None) -> "ImageDataset":
        index = np.asarray(index)
        return ImageDataset(self.images[index], self.labels[index], list(self.class_names),
                            name or self.name, dict(self.info))

    def split(self, fraction: float, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """Split into (rest, held_out) with ``fraction`` held out, stratified by class.

        The same seed always gives the same split.
        """
        rest, held = split_indices(self.labels, fraction, seed)
        return self.subset(rest), self.subset(held)

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return (f"ImageDataset(name={self.name!r}, n={len(self)}, shape={h}x{w}x{c}, "
                f"classes={self.n_classes})")

    def _repr_html_(self) -> str:  # sample images per class in a notebook
        from .preview import dataset_html; return dataset_html(self)  # noqa: E702

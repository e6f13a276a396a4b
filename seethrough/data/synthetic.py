"""The two-class "white region" images that show what logistic-regression weights learn.

Class ``left`` has a bright square somewhere in the left half of a dark, noisy
image; class ``right`` has it in the right half. A linear model can only tell
them apart by weighting pixels, so its weight map shows the two halves with
opposite signs: the classic picture of what logistic regression learns.
"""

from __future__ import annotations

import numpy as np

from .dataset import ImageDataset


def make_synthetic(n: int = 1000, size: int = 16, square: int = 5, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)  # (N, H, W) dark noise
    labels = np.arange(n) % 2  # balanced: 0 = left, 1 = right
    half = size // 2
    for i, label in enumerate(labels):
        top = rng.integers(0, size - square + 1)
        lo = 0 if label == 0 else half
        left = rng.integers(lo, lo + half - square + 1)
        images[i, top:top + square, left:left + square] = rng.integers(200, 256)
    return ImageDataset(images, labels, ["left", "right"], "synthetic")


def load_synthetic(seed: int = 0, **_):
    return {"train": make_synthetic(1000, seed=seed), "test": make_synthetic(400, seed=seed + 1)}

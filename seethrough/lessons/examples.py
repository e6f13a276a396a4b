"""The default inputs of the lessons (inputs, not results: every result is computed).

The 5x5 binary image and the 3x3 "X" filter are the textbook convolution example;
the 4x4x3 image and its per-channel 2x2 filters are drawn from a fixed seed.
"""

from __future__ import annotations

import numpy as np

BINARY_IMAGE = np.array([[1, 1, 1, 0, 0],
                         [0, 1, 1, 1, 0],
                         [0, 0, 1, 1, 1],
                         [0, 0, 1, 1, 0],
                         [0, 1, 1, 0, 0]], dtype=np.float64)

X_FILTER = np.array([[1, 0, 1],
                     [0, 1, 0],
                     [1, 0, 1]], dtype=np.float64)

VERTICAL_EDGE = np.array([[1, 0, -1],
                          [1, 0, -1],
                          [1, 0, -1]], dtype=np.float64)

POOL_INPUT = np.array([[1, 3, 2, 1],
                       [4, 6, 5, 0],
                       [3, 2, 1, 0],
                       [1, 2, 3, 4]], dtype=np.float64)


def small_rgb(seed: int = 0) -> np.ndarray:
    """A 4x4x3 image as (3, 4, 4) with values 0..9."""
    return np.random.default_rng(seed).integers(0, 10, size=(3, 4, 4)).astype(np.float64)


def small_filters(channels: int, k: int = 2, seed: int = 1) -> np.ndarray:
    """One k x k filter per channel, values -1, 0 or 1, as (C, k, k)."""
    return np.random.default_rng(seed).integers(-1, 2, size=(channels, k, k)).astype(np.float64)

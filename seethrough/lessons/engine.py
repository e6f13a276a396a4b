"""The lessons' arithmetic, done by the NumPy engine's own layers (never by hand-typed numbers)."""

from __future__ import annotations

import numpy as np

from ..scratch import layers as L


def as_chw(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (1, H, W); (C, H, W) stays."""
    image = np.asarray(image, dtype=np.float64)
    return image[None] if image.ndim == 2 else image


def pad(image: np.ndarray, padding: int) -> np.ndarray:
    """Zero padding of an (H, W) or (C, H, W) image, by the engine's ``pad_image``."""
    x = as_chw(image)[None]                                           # (1, C, H, W)
    out = L.pad_image(x, padding)[0]
    return out[0] if np.ndim(image) == 2 else out


def conv(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: int = 0, bias: float = 0.0):
    """One filter over an image: (H, W) with a (k, k) kernel, or (C, H, W) with (C, k, k).

    Returns (feature map (OH, OW), windows (OH, OW, C, k, k)): the windows are the
    engine's im2col rows, so each output is visibly the dot product of its window and the kernel.
    """
    x = as_chw(image)[None]                                           # (1, C, H, W)
    w = as_chw(kernel)[None]                                          # (1, C, k, k)
    layer = L.Conv2d("conv1", x.shape[1], 1, w.shape[-1], stride, padding, True, dtype=np.float64)
    layer.params["weight"], layer.params["bias"] = w, np.array([bias], dtype=np.float64)
    out = layer.forward(x)[0, 0]                                      # (OH, OW)
    cols = layer._cache[0].T.reshape(out.shape + w.shape[1:])         # (OH*OW, C*k*k) -> (OH, OW, C, k, k)
    return out, cols


def relu(x: np.ndarray) -> np.ndarray:
    return L.ReLU("relu1").forward(np.asarray(x, dtype=np.float64))


def pool(x: np.ndarray, kind: str, k: int = 2, stride: int | None = None) -> np.ndarray:
    """Max or average pooling of an (H, W) or (C, H, W) array."""
    layer = L.MaxPool2d("maxpool1", k, stride) if kind == "max" else L.AvgPool2d("avgpool1", k, stride)
    out = layer.forward(as_chw(x)[None])[0]
    return out[0] if np.ndim(x) == 2 else out


def pool_windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """The (OH, OW, k, k) windows a pool of an (H, W) array looks at."""
    return L.windows(as_chw(x)[None], k, stride)[0, 0]

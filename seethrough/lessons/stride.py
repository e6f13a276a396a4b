"""Stride, channels and the fully connected layer: a 4x4x3 image through conv, max pool and a linear layer."""

from __future__ import annotations

import numpy as np

from ..scratch import layers as L
from . import examples
from .base import Lesson, dot_text, fmt
from .engine import conv, pool
from .inputs import check_window, read_image, read_kernel


def run(image=None, kernel=None, stride: int = 1, padding: int = 0, **_) -> Lesson:
    x = read_image(image, channels=3) if image else examples.small_rgb()      # (3, H, W)
    if kernel:
        k2 = read_kernel(kernel)
        w = np.stack([k2] * x.shape[0])                                       # the same filter per channel
    else:
        w = examples.small_filters(x.shape[0])                                # (3, 2, 2)
    k = w.shape[-1]
    check_window(x.shape, k, stride, padding)
    fmap, cols = conv(x, w, stride, padding)                                   # (OH, OW)
    lesson = Lesson("stride", "Stride, channels and the fully connected layer")
    c, h, wd = x.shape
    lesson.text(f"A {h}x{wd}x{c} image has {c} channels. A {k}x{k} filter has one {k}x{k} slice per channel; "
                "the output at each place is the sum over all channels of window · slice.")
    lesson.grid(f"image {h}x{wd}x{c}", x)
    lesson.grid(f"filter {k}x{k}x{c}", w)
    rows = []
    for r in range(fmap.shape[0]):
        for q in range(fmap.shape[1]):
            parts = [f"[{dot_text(cols[r, q, ch], w[ch])}]" for ch in range(c)]
            rows.append([f"({r}, {q})", " + ".join(parts), fmt(fmap[r, q])])
    lesson.table(["output", "sum over channels of window · filter", "value"], rows,
                 f"stride {stride}: the filter moves {stride} pixel{'s' if stride > 1 else ''} at a time")
    lesson.grid(f"feature map at stride {stride}: {fmap.shape[0]}x{fmap.shape[1]}", fmap)
    lesson.text(f"Output size: ({h} + 2*{padding} - {k}) / {stride} + 1 = {fmap.shape[0]} (rounded down). "
                "A larger stride skips positions: a smaller map and less computation.")
    if min(fmap.shape) >= 2:
        pooled = pool(fmap, "max", 2, 1)
        lesson.grid(f"2x2 max pool, stride 1: {pooled.shape[0]}x{pooled.shape[1]}", pooled)
    else:
        pooled = fmap
        lesson.text("The feature map is too small for a 2x2 pool; it goes to the linear layer as it is.")
    flat = pooled.reshape(1, -1)                                               # (1, F)
    fc = L.Linear("linear1", flat.shape[1], 2, True, np.random.default_rng(2), np.float64)
    fc.params["weight"] = np.round(fc.params["weight"] * 2, 1)                 # short numbers to read
    fc.params["bias"] = np.zeros(2)
    scores = fc.forward(flat)[0]
    lesson.text(f"Flatten turns the {pooled.shape[0]}x{pooled.shape[1]} map into {flat.shape[1]} numbers; a fully "
                "connected layer gives each output class one weight per number and sums.")
    lesson.grids(("flattened", flat), ("weights (2 classes)", fc.params["weight"]))
    lesson.table(["class", "flattened · weights + bias", "score"],
                 [[i, f"{dot_text(flat[0], fc.params['weight'][i])} + 0", fmt(scores[i])] for i in range(2)])
    return lesson

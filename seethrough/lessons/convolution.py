"""Convolution: slide a filter over the image; each output is the dot product of a window and the filter."""

from __future__ import annotations

import numpy as np

from . import examples
from .base import Lesson, dot_text, fmt
from .engine import conv, pad
from .inputs import check_window, read_image, read_kernel


def run(image=None, kernel=None, stride: int = 1, padding: int = 0, **_) -> Lesson:
    x = read_image(image) if image else examples.BINARY_IMAGE
    w = read_kernel(kernel) if kernel else examples.X_FILTER
    k = w.shape[0]
    check_window(x.shape, k, stride, padding)
    out, cols = conv(x, w, stride, padding)
    lesson = Lesson("convolution", "Convolution")
    lesson.text(f"A {k}x{k} filter slides over the {x.shape[0]}x{x.shape[1]} image"
                f"{f' padded by {padding}' if padding else ''} in steps of {stride}. At each place the "
                "window of pixels under the filter is multiplied by the filter, number by number, and summed.")
    shown = pad(x, padding) if padding else x
    lesson.grids(("image" + (" (padded)" if padding else ""), shown), (f"filter {k}x{k}", w),
                 (f"feature map {out.shape[0]}x{out.shape[1]}", out))
    rows = []
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            win = cols[r, c, 0]
            rows.append([f"({r}, {c})", f"rows {r * stride}-{r * stride + k - 1}, cols {c * stride}-{c * stride + k - 1}",
                         dot_text(win, w), fmt(out[r, c])])
    lesson.table(["output", "window", "window · filter", "value"], rows, "every dot product of the feature map")
    oh = (x.shape[0] + 2 * padding - k) // stride + 1
    lesson.text(f"Output size: (H + 2p - k) / s + 1 = ({x.shape[0]} + {2 * padding} - {k}) / {stride} + 1 = {oh} "
                "(rounded down). The largest values mark where the image looks most like the filter.")
    best = np.unravel_index(out.argmax(), out.shape)
    lesson.text(f"The strongest response, {fmt(out[best])}, is at {tuple(int(i) for i in best)}.")
    return lesson

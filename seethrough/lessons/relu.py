"""ReLU: keep positive responses, replace negative ones by zero."""

from __future__ import annotations

from . import examples
from .base import Lesson
from .engine import conv, relu
from .inputs import check_window, read_image, read_kernel


def run(image=None, kernel=None, stride: int = 1, padding: int = 0, **_) -> Lesson:
    x = read_image(image) if image else examples.BINARY_IMAGE
    w = read_kernel(kernel) if kernel else examples.VERTICAL_EDGE
    check_window(x.shape, w.shape[0], stride, padding)
    fmap, _ = conv(x, w, stride, padding)
    out = relu(fmap)
    lesson = Lesson("relu", "ReLU")
    lesson.text("A feature map has positive values where the image matches the filter and negative values "
                "where it matches the opposite pattern. ReLU(x) = max(0, x) keeps the first and zeroes the second.")
    lesson.grids(("image", x), ("filter", w), ("feature map", fmap), ("ReLU(feature map)", out))
    n_neg = int((fmap < 0).sum())
    lesson.text(f"{n_neg} of {fmap.size} values were negative and became 0. Its gradient is 1 where the input "
                "was positive and 0 elsewhere, so only the kept values learn from the error.")
    return lesson

"""Padding: a ring of zeros around the image, so a k x k filter can be centred on every pixel."""

from __future__ import annotations

from . import examples
from .base import Lesson
from .engine import pad
from .inputs import check_padding, read_image


def run(image=None, padding: int = 1, **_) -> Lesson:
    x = read_image(image) if image else examples.BINARY_IMAGE
    p = check_padding(padding)
    out = pad(x, p)
    h, w = x.shape
    lesson = Lesson("padding", "Padding")
    lesson.text(f"A {h}x{w} image padded by {p} on every side becomes "
                f"{out.shape[0]}x{out.shape[1]}: (H + 2p) x (W + 2p) = ({h} + {2 * p}) x ({w} + {2 * p}).")
    lesson.grids((f"image {h}x{w}", x), (f"padded by {p}: {out.shape[0]}x{out.shape[1]}", out))
    k = 2 * p + 1
    lesson.text(f"With padding {p}, a {k}x{k} filter at stride 1 gives an output as large as the input "
                f"({h}x{w}): (H + 2p - k) + 1 = {h} + {2 * p} - {k} + 1 = {h + 2 * p - k + 1}. "
                "Without padding the output shrinks and the border pixels are seen by fewer windows.")
    return lesson

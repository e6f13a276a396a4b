"""Generated images for the page's data-set tests and the training benchmark: three shapes.

Each image is a circle, a square or a triangle of random size, place and colour on a
random background, drawn by Pillow; ``shape_pngs(n)`` gives ``n`` PNG files per class.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def shape_image(kind: str, rng: np.random.Generator, side: int = 64) -> Image.Image:
    back = tuple(int(v) for v in rng.integers(0, 90, 3))
    fore = tuple(int(v) for v in rng.integers(150, 256, 3))
    img = Image.new("RGB", (side, side), back)
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.2, 0.4) * side
    cx, cy = rng.uniform(r, side - r, 2)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fore)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fore)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fore)
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def shape_pngs(n: int, side: int = 64, seed: int = 0) -> dict[str, list[bytes]]:
    """``n`` PNG files (bytes) of each shape."""
    rng = np.random.default_rng(seed)
    return {kind: [png(shape_image(kind, rng, side)) for _ in range(n)] for kind in SHAPES}

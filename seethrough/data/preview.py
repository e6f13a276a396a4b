"""An ImageDataset in a notebook: its size and a row of sample images for each class.

Drawn with Pillow (nearest-neighbour enlargement of one strip per class), not matplotlib:
ten classes take a few milliseconds.
"""

from __future__ import annotations

import io

import numpy as np


def mosaic_png(images: np.ndarray, scale: int) -> bytes:
    """uint8 (N, H, W, C) images side by side in one PNG, each enlarged ``scale`` times (nearest)."""
    from PIL import Image

    n, h, w, c = images.shape
    strip = np.full((h, n * (w + 1) - 1, c), 255, np.uint8)  # one white column between images
    for i, im in enumerate(images):
        strip[:, i * (w + 1):i * (w + 1) + w] = im
    pil = Image.fromarray(strip[..., 0] if c == 1 else strip)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def dataset_html(data, per_class: int = 8, max_classes: int = 20, seed: int = 0) -> str:
    """An ImageDataset as its size and a row of sample images for each class."""
    from ..htmlparts import esc, html_table, image, wrap

    h, w, c = data.image_shape
    scale = max(1, 48 // max(h, w))
    rng = np.random.default_rng(seed)
    counts = np.bincount(data.labels, minlength=data.n_classes)
    rows = []
    for k, name in enumerate(data.class_names[:max_classes]):
        idx = np.flatnonzero(data.labels == k)
        if len(idx) == 0:
            rows.append([esc(name), "0", ""])
            continue
        pick = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
        rows.append([esc(name), f"{counts[k]:,}", image(mosaic_png(np.asarray(data.images[pick]), scale),
                                                        f"samples of {name}", pixelated=True)])

    more = (f'<p class="note">... and {data.n_classes - max_classes} more classes</p>'
            if data.n_classes > max_classes else "")
    head = (f"<h3>ImageDataset: {esc(data.name)}</h3><p class=\"note\">{len(data):,} images of {h}x{w}x{c}, "
            f"{data.n_classes} classes</p>")
    return wrap(head, html_table(["class", "images", "samples"], rows), more)

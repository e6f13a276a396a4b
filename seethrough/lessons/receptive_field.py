"""Receptive field: how much of the input each layer's unit sees, layer by layer.

Computed from the spec (size r, jump j between neighbouring units, centre of the first unit):

    r_out = r_in + (k - 1) * j_in,   j_out = j_in * s,   start_out = start_in + ((k - 1) / 2 - p) * j_in

and measured by the NumPy engine: with every weight set to 1 and max pools replaced by
average pools (so the gradient reaches every pixel of a window), the gradient of the centre
unit with respect to the input is non-zero exactly on its receptive field (cut at the borders).
"""

from __future__ import annotations

import numpy as np

from ..errors import SeethroughError
from ..models import create_spec, make_spec
from ..scratch import layers as L
from ..scratch.model import Net
from .base import Lesson


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        h, w, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SeethroughError(f"--input must be HxWxC, e.g. 32x32x3, got {text!r}") from None
    return h, w, c


def theory(spec, in_shape):
    """One row per layer: (layer, r, j, start) while the input is an image."""
    r, j, start, rows = 1, 1, 0.5, []
    for layer in spec:
        p = layer.params
        if layer.kind in ("conv", "maxpool", "avgpool"):
            k, s, pad = p["k"], p.get("stride") or p["k"], p.get("pad", 0)
            start += ((k - 1) / 2 - pad) * j
            r += (k - 1) * j
            j *= s
        elif layer.kind in ("flatten", "gap", "linear"):
            break
        rows.append((layer, r, j, start))
    return rows


def measure(net: Net, index: int) -> tuple[int, int]:
    """Height and width of the input region that moves the centre unit of layer ``index``."""
    x = np.ones((1,) + net.in_shape)
    out = x
    for layer in net.layers[:index + 1]:
        out = layer.forward(out)
    g = np.zeros_like(out)
    g[0, 0, out.shape[2] // 2, out.shape[3] // 2] = 1
    for layer in reversed(net.layers[:index + 1]):
        g = layer.backward(g)
    rows, cols = np.nonzero(np.abs(g[0]).sum(0))
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def run(model: str = "seed-cnn", input: str = "32x32x3", classes: int = 10, **_) -> Lesson:
    h, w, c = parse_shape(input)
    spec = create_spec(model, (c, h, w), classes)
    # With all-ones weights every channel of a layer is the same, so one channel per conv
    # measures the same field at a fraction of the cost.
    proxy = make_spec([{**l.to_dict(), "out": 1} if l.kind == "conv" else l.to_dict() for l in spec])
    net = Net(proxy, (c, h, w), dtype=np.float64)
    for i, layer in enumerate(net.layers):  # all-ones weights, average instead of max
        for k in layer.params:
            layer.params[k] = np.ones_like(layer.params[k]) if k == "weight" else np.zeros_like(layer.params[k])
        if isinstance(layer, L.MaxPool2d):
            net.layers[i] = L.AvgPool2d(layer.name, layer.k, layer.stride)
    from ..models import infer_shapes

    shapes = infer_shapes(spec, (c, h, w))
    lesson = Lesson("receptive-field", f"Receptive field of {model} on {h}x{w}x{c} input")
    lesson.text("Each unit of a layer sees a square of the input: its receptive field. A k x k layer adds "
                "(k - 1) * jump pixels to it; a stride multiplies the jump, the distance in input pixels "
                "between neighbouring units.")
    rows = []
    for i, (layer, r, j, start) in enumerate(theory(spec, (c, h, w))):
        mh, mw = measure(net, i)
        shape = "x".join(map(str, shapes[i][1:])) + f"x{shapes[i][0]}"
        rows.append([layer.name, str(layer), shape, f"{r}x{r}", str(j), f"{start:g}",
                     f"{mh}x{mw}" + (" (cut at the border)" if r > min(h, w) or (mh, mw) != (r, r) else "")])
    lesson.table(["layer", "spec", "output HxWxC", "receptive field", "jump", "centre of unit 0",
                  "measured by gradient"], rows)
    last = next((l for l in spec if l.kind in ("flatten", "gap", "linear")), None)
    if last is not None:
        lesson.text(f"From {last.name} on, every unit sees the whole {h}x{w} image.")
    return lesson

"""The arithmetic behind one number of a feature map, done in NumPy from the weights.

A conv layer's output at channel ``o``, row ``y``, column ``x`` is

    sum over c, i, j of  window[c, i, j] * kernel[o, c, i, j]   +  bias[o]

where ``window`` is the ``k x k`` patch of the zero-padded layer input whose top-left
corner is at ``(y * stride, x * stride)``. :func:`conv_arithmetic` returns every
part of that sum so a page can show it; the web test checks its total against the
value PyTorch computed.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..trained import TrainedModel


def layer_io(model: TrainedModel, image: np.ndarray, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """The input and output of ``layer`` for one uint8 (H, W, C) image, as float arrays
    (the walk of :func:`seethrough.explain.views.walk_layers`, stopped at ``layer``)."""
    from ..explain.views import walk_layers

    for name, x, y in walk_layers(model, image):
        if name == layer:
            return x[0].cpu().numpy(), y[0].cpu().numpy()
    raise ModelError(f"no layer named {layer!r}")


def conv_arithmetic(x_in: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, channel: int,
                    y: int, x: int, stride: int = 1, pad: int = 0) -> dict:
    """Every term of conv output (channel, y, x).

    Parameters
    ----------
    x_in : (C, H, W) layer input
    weight : (O, C, k, k) kernels; bias : (O,) or None
    """
    c, h, w = x_in.shape
    k = weight.shape[-1]
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if not (0 <= channel < weight.shape[0]):
        raise ModelError(f"channel must be in 0..{weight.shape[0] - 1}, got {channel}")
    if not (0 <= y < out_h and 0 <= x < out_w):
        raise ModelError(f"position ({y}, {x}) is outside the {out_h}x{out_w} feature map")
    padded = np.pad(x_in.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))  # (C, H+2p, W+2p)
    top, left = y * stride, x * stride
    window = padded[:, top:top + k, left:left + k]  # (C, k, k)
    kernel = weight[channel].astype(np.float64)  # (C, k, k)
    products = window * kernel
    b = float(bias[channel]) if bias is not None else 0.0
    total = float(products.sum())
    return {"channel": channel, "y": y, "x": x, "stride": stride, "pad": pad, "k": k,
            # the window's rows and columns in the unpadded input (may run past its edges into padding)
            "rows": [top - pad, top - pad + k - 1], "cols": [left - pad, left - pad + k - 1],
            "window": window, "kernel": kernel, "products": products,
            "sum": total, "bias": b, "value": total + b}


def arithmetic_at(model: TrainedModel, image: np.ndarray, layer: str, channel: int, y: int, x: int) -> dict:
    """:func:`conv_arithmetic` for conv ``layer`` of ``model`` on ``image``, plus PyTorch's own value."""
    spec = {l.name: l for l in model.spec}
    if layer not in spec:
        raise ModelError(f"no layer named {layer!r}")
    if spec[layer].kind != "conv":
        raise ModelError(f"layer {layer!r} is a {spec[layer].kind} layer; the arithmetic is shown for conv layers")
    conv = model.net.get_submodule(layer)
    x_in, out = layer_io(model, image, layer)
    p = spec[layer].params
    bias = conv.bias.detach().cpu().numpy() if conv.bias is not None else None
    result = conv_arithmetic(x_in, conv.weight.detach().cpu().numpy(), bias, channel, y, x, p["stride"], p["pad"])
    result["torch_value"] = float(out[channel, y, x])
    return result

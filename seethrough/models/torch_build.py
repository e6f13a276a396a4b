"""Build a PyTorch module from a spec.

The module is an ``nn.Sequential`` whose children carry the spec's layer names, so
its ``state_dict`` keys are ``<layer name>.weight``, ``<layer name>.bias`` and so on:
the names the NumPy engine and ``model.safetensors`` use too.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .spec import Layer, infer_shapes


def build_layer(layer: Layer, in_shape: tuple) -> nn.Module:
    p = layer.params
    if layer.kind == "conv":
        return nn.Conv2d(in_shape[0], p["out"], p["k"], stride=p["stride"], padding=p["pad"], bias=p["bias"])
    if layer.kind == "maxpool":
        return nn.MaxPool2d(p["k"], stride=p["stride"] or p["k"])
    if layer.kind == "avgpool":
        return nn.AvgPool2d(p["k"], stride=p["stride"] or p["k"])
    if layer.kind == "gap":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if layer.kind == "relu":
        return nn.ReLU()
    if layer.kind == "flatten":
        return nn.Flatten()
    if layer.kind == "linear":
        return nn.Linear(in_shape[0], p["out"], bias=p["bias"])
    if layer.kind == "batchnorm":
        bn = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return bn(in_shape[0], eps=p["eps"], momentum=p["momentum"])
    if layer.kind == "dropout":
        return nn.Dropout(p["p"])
    raise AssertionError(f"no torch layer for {layer.kind}")  # spec.parse_layer rejects unknown kinds


def build_torch(spec: list[Layer], in_shape: tuple) -> nn.Sequential:
    """An ``nn.Sequential`` for ``spec`` on inputs of shape (C, H, W)."""
    shapes = [tuple(in_shape)] + infer_shapes(spec, in_shape)
    return nn.Sequential(OrderedDict(
        (layer.name, build_layer(layer, shape)) for layer, shape in zip(spec, shapes)))

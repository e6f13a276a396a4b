"""Model views: what a trained network holds, read straight from its weights and activations.

- :func:`weight_maps`: a linear model's weights per class, reshaped to the image;
- :func:`kernels`: the filters of a conv layer;
- :func:`feature_maps`: every layer's output for one image.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ModelError
from ..trained import TrainedModel


def layer_names(model: TrainedModel, kind: str | None = None) -> list[str]:
    return [l.name for l in model.spec if kind is None or l.kind == kind]


def weight_maps(model: TrainedModel) -> np.ndarray:
    """The first linear layer's weights reshaped to the input: float (K, H, W, C).

    For logistic regression (``flatten`` then one ``linear``) these are the classic
    "where each class lives" pictures: positive weights where bright pixels vote for
    the class, negative where they vote against it.
    """
    kinds = [l.kind for l in model.spec]
    if kinds[:2] != ["flatten", "linear"]:
        raise ModelError("weight maps need a model that starts with flatten then linear (e.g. logreg, mlp); "
                         f"this one starts with {', '.join(kinds[:2])}")
    name = model.spec[1].name
    w = model.net.get_submodule(name).weight.detach().cpu().numpy()  # (K, C*H*W)
    c, h, wd = model.in_chw
    return w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1)  # (K, H, W, C)


def kernels(model: TrainedModel, layer: str | None = None) -> np.ndarray:
    """The filters of conv ``layer`` (the first conv when None): float (out, in, k, k)."""
    convs = layer_names(model, "conv")
    if not convs:
        raise ModelError("this model has no conv layer, so it has no kernels")
    layer = layer or convs[0]
    if layer not in convs:
        raise ModelError(f"no conv layer named {layer!r}; conv layers: {', '.join(convs)}")
    return model.net.get_submodule(layer).weight.detach().cpu().numpy()


@torch.no_grad()
def walk_layers(model: TrainedModel, image: np.ndarray):
    """Run one uint8 (H, W, C) image through the net, layer by layer: yields
    (layer name, its input, its output), tensors with a batch of one. The one walk
    behind :func:`feature_maps` and the web page's conv arithmetic."""
    model.net.eval()
    x = model.prepare(image[None])  # (1, C, H, W)
    for name, module in model.net.named_children():
        y = module(x)
        yield name, x, y
        x = y


def feature_maps(model: TrainedModel, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Every layer's output for one uint8 (H, W, C) image: [(layer name, array), ...].

    Image-shaped outputs are (C, H, W); flat ones (F,).
    """
    return [(name, y[0].cpu().numpy()) for name, _, y in walk_layers(model, image)]

"""Between the engines: a run folder's TrainedModel <-> a NumPy :class:`Net`.

The TrainedModel stays the container (spec, input shape, class names, preprocessing,
the files of a run folder); only the arithmetic moves. Inputs are prepared by the
TrainedModel's own ``prepare`` (the same Preprocess, the same float32 numbers), then
handed to the NumPy layers.
"""

from __future__ import annotations

import numpy as np
import torch

from ..trained import TrainedModel
from .layers import softmax
from .model import Net


def to_numpy(model: TrainedModel, dtype=np.float32) -> Net:
    """A NumPy Net with ``model``'s spec and a copy of its weights."""
    net = Net(model.spec, model.in_chw, dtype=dtype)
    net.load_state_dict(model.net.state_dict())
    return net


def copy_to_torch(net: Net, model: TrainedModel) -> TrainedModel:
    """Copy ``net``'s weights into ``model.net`` (so ``model.save`` writes them); returns ``model``."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in net.state_dict().items()}
    device = model.device
    own = model.net.state_dict()
    model.net.load_state_dict({k: v.to(device=device, dtype=own[k].dtype) for k, v in state.items()})
    return model


def prepare(model: TrainedModel, images) -> np.ndarray:
    """uint8 (N, H, W, C) -> the float32 (N, C, H, W) input both engines see."""
    return model.prepare(images).cpu().numpy()


def logits(model: TrainedModel, images: np.ndarray, net: Net | None = None, batch_size: int = 256) -> np.ndarray:
    """Raw scores (N, n_classes) computed by the NumPy engine."""
    net = net or to_numpy(model)
    out = [net.forward(prepare(model, images[i:i + batch_size]))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(model.class_names)), np.float32)


def predict_proba(model: TrainedModel, images: np.ndarray, net: Net | None = None) -> np.ndarray:
    return softmax(logits(model, images, net).astype(np.float64))

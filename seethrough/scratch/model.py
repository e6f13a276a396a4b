"""A network of NumPy layers built from a spec, with PyTorch-compatible state dicts.

    >>> from seethrough.models import create_spec
    >>> net = Net(create_spec("lenet5", (1, 28, 28), 10), (1, 28, 28))
    >>> net.forward(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)

``state_dict()`` keys are ``<layer name>.<parameter>`` (``conv1.weight``), the keys of
the PyTorch module built from the same spec, so weights move between engines as is.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..models import infer_shapes, make_spec
from . import layers as L


def build_layer(layer, in_shape: tuple, rng, dtype) -> L.Layer:
    """The NumPy layer for one spec ``Layer`` whose input has shape ``in_shape``."""
    p = layer.params
    kind = layer.kind
    if kind == "conv":
        return L.Conv2d(layer.name, in_shape[0], p["out"], p["k"], p["stride"], p["pad"], p["bias"], rng, dtype)
    if kind == "maxpool":
        return L.MaxPool2d(layer.name, p["k"], p["stride"])
    if kind == "avgpool":
        return L.AvgPool2d(layer.name, p["k"], p["stride"])
    if kind == "gap":
        return L.GlobalAvgPool(layer.name)
    if kind == "relu":
        return L.ReLU(layer.name)
    if kind == "flatten":
        return L.Flatten(layer.name)
    if kind == "linear":
        return L.Linear(layer.name, in_shape[0], p["out"], p["bias"], rng, dtype)
    if kind == "batchnorm":
        return L.BatchNorm(layer.name, in_shape[0], p["eps"], p["momentum"], dtype)
    if kind == "dropout":
        return L.Dropout(layer.name, p["p"], rng)
    raise ModelError(f"layer {layer.name}: the NumPy engine has no {kind!r} layer; it runs "
                     f"{', '.join(SUPPORTED)}; use --engine torch for this model")


SUPPORTED = ("conv", "maxpool", "avgpool", "gap", "relu", "flatten", "linear", "batchnorm", "dropout")


class Net:
    """The layers of ``spec`` in order, for inputs of shape (C, H, W).

    Parameters
    ----------
    spec : list of Layer (or anything :func:`make_spec` takes)
    in_shape : (C, H, W)
    dtype : float32 (to match PyTorch) or float64 (for gradient checks)
    seed : initial weights, drawn as PyTorch's defaults are (uniform in +-1/sqrt(fan_in))
    """

    def __init__(self, spec, in_shape: tuple, dtype=np.float32, seed: int = 0):
        self.spec = make_spec(spec)
        self.in_shape = tuple(in_shape)
        self.dtype = np.dtype(dtype)
        for layer in self.spec:  # refuse before building anything
            if layer.kind not in SUPPORTED:
                build_layer(layer, (), None, dtype)
        shapes = [self.in_shape] + infer_shapes(self.spec, self.in_shape)
        rng = np.random.default_rng(seed)
        self.layers = [build_layer(layer, shape, rng, self.dtype) for layer, shape in zip(self.spec, shapes)]

    def forward(self, x: np.ndarray, train: bool = False, upto: str | None = None) -> np.ndarray:
        """(N, C, H, W) -> (N, n_classes) logits; ``upto`` stops after the named layer."""
        x = np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            x = layer.forward(x, train)
            if layer.name == upto:
                break
        return x

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The output of every layer, by name (evaluation mode)."""
        out, x = {}, np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            x = out[layer.name] = layer.forward(x, False)
        return out

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Propagate dL/d(logits) back through every layer; returns dL/d(input).

        Training needs only the parameters' gradients: ``input_grad=False`` lets a first
        conv or linear layer skip dL/d(input) and returns None.
        """
        first = self.layers[0]
        for layer in reversed(self.layers):
            if layer is first and not input_grad and isinstance(layer, (L.Conv2d, L.Linear)):
                layer.backward(dout, need_dx=False)
                return None
            dout = layer.backward(dout)
        return dout

    __call__ = forward

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> list[tuple[str, L.Layer, str]]:
        """(state-dict key, layer, parameter name) for every trained array."""
        return [(f"{layer.name}.{k}", layer, k) for layer in self.layers for k in layer.params]

    def gradients(self) -> dict[str, np.ndarray]:
        return {key: layer.grads[k] for key, layer, k in self.parameters() if k in layer.grads}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by PyTorch key."""
        out = {}
        for layer in self.layers:
            for k, v in {**layer.params, **layer.buffers}.items():
                out[f"{layer.name}.{k}"] = v
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays (NumPy or anything with ``.numpy()``) in; keys and shapes must match exactly."""
        own = self.state_dict()
        missing, extra = set(own) - set(state), set(state) - set(own)
        if missing or extra:
            raise ModelError(f"weights do not match the spec: missing {sorted(missing) or 'none'}, "
                             f"unexpected {sorted(extra) or 'none'}")
        for layer in self.layers:
            for store in (layer.params, layer.buffers):
                for k in store:
                    key = f"{layer.name}.{k}"
                    v = state[key]
                    v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
                    if v.shape != store[k].shape:
                        raise ModelError(f"{key}: weights of shape {v.shape}, the spec needs {store[k].shape}")
                    store[k] = v.astype(store[k].dtype, copy=True)

    def count_params(self) -> int:
        return sum(layer.params[k].size for _, layer, k in self.parameters())

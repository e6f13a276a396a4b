"""Model specs: a network written as a short list of layers.

A spec is a list of :class:`Layer`. It can be written as text::

    ["conv(out=32, k=3)", "relu", "maxpool(k=2)", "flatten", "linear(out=10)"]

or as JSON (a list of such strings, or of ``{"type": "conv", "out": 32, ...}``).
The same spec builds a PyTorch module (:mod:`seethrough.models.torch_build`), runs in
the NumPy engine, and is drawn layer by layer. Every layer gets a name stable across
engines (``conv1``, ``relu1``, ``maxpool1``, ``linear1``, ...), which is also the
prefix of its weights in ``model.safetensors``.

Shapes are (C, H, W) for images and (F,) after ``flatten``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError

REQUIRED = object()

# kind -> {parameter: default}; REQUIRED marks parameters without a default.
LAYER_KINDS: dict[str, dict] = {
    "conv": {"out": REQUIRED, "k": 3, "stride": 1, "pad": 0, "bias": True},
    "maxpool": {"k": 2, "stride": None},
    "avgpool": {"k": 2, "stride": None},
    "gap": {},  # global average pool: (C, H, W) -> (C,)
    "relu": {},
    "flatten": {},
    "linear": {"out": REQUIRED, "bias": True},
    "batchnorm": {"eps": 1e-5, "momentum": 0.1},
    "dropout": {"p": 0.5},
}


@dataclass(frozen=True)
class Layer:
    kind: str
    name: str
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items() if v != LAYER_KINDS[self.kind][k])
        return f"{self.kind}({args})" if args else self.kind

    def to_dict(self) -> dict:
        return {"type": self.kind, "name": self.name, **self.params}


_CALL = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def parse_layer(item) -> tuple[str, dict, str | None]:
    """``"conv(out=32, k=3)"`` or ``{"type": "conv", "out": 32}`` -> (kind, params, name)."""
    if isinstance(item, Layer):
        return item.kind, dict(item.params), item.name
    if isinstance(item, dict):
        item = dict(item)
        kind = item.pop("type", None) or item.pop("kind", None)
        name = item.pop("name", None)
        params = item
    elif isinstance(item, str):
        m = _CALL.match(item)
        if not m:
            raise ModelError(f"cannot read layer {item!r}; expected e.g. 'conv(out=32, k=3)'")
        kind, args = m.group(1), m.group(2)
        params, name = {}, None
        if args and args.strip():
            try:
                call = ast.parse(f"f({args})", mode="eval").body
                params = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            except (SyntaxError, ValueError):
                raise ModelError(f"cannot read the arguments of layer {item!r}; use name=value pairs") from None
            if call.args:
                raise ModelError(f"layer {item!r}: give arguments by name, e.g. conv(out=32)")
            name = params.pop("name", None)
    else:
        raise ModelError(f"a layer is a string or a dict, not {type(item).__name__}")
    if kind not in LAYER_KINDS:
        raise ModelError(f"unknown layer type {kind!r}; expected one of {', '.join(LAYER_KINDS)}")
    allowed = LAYER_KINDS[kind]
    for k in params:
        if k not in allowed:
            raise ModelError(f"layer {kind}: unknown parameter {k!r}; expected {', '.join(allowed) or 'none'}")
    full = {}
    for k, default in allowed.items():
        if k in params:
            full[k] = params[k]
        elif default is REQUIRED:
            raise ModelError(f"layer {kind}: parameter {k!r} is required")
        else:
            full[k] = default
    return kind, full, name


def make_spec(items) -> list[Layer]:
    """Build a spec from strings, dicts or Layers, naming each layer ``<kind><n>``."""
    if isinstance(items, (str, Path)) and str(items).endswith(".json"):
        return load_spec(items)
    if not isinstance(items, (list, tuple)) or not items:
        raise ModelError("a spec is a non-empty list of layers")
    counts: dict[str, int] = {}
    layers, seen = [], set()
    for item in items:
        kind, params, name = parse_layer(item)
        counts[kind] = counts.get(kind, 0) + 1
        name = name or f"{kind}{counts[kind]}"
        if name in seen:
            raise ModelError(f"two layers are named {name!r}; layer names must be unique")
        seen.add(name)
        layers.append(Layer(kind, name, params))
    return layers


def load_spec(path) -> list[Layer]:
    """Read a spec from a JSON file: a list of layers, or ``{"layers": [...]}``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such spec file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("layers")
    if not isinstance(data, list):
        raise ModelError(f"{path}: expected a JSON list of layers or {{\"layers\": [...]}}")
    return make_spec(data)


def is_linear(spec: list[Layer]) -> bool:
    """Whether ``spec`` is logistic regression: one linear layer on the flattened pixels."""
    return [l.kind for l in spec] == ["flatten", "linear"]


def has_conv(spec: list[Layer]) -> bool:
    """Whether ``spec`` has a convolution (so Grad-CAM, kernels and feature maps apply)."""
    return any(l.kind == "conv" for l in spec)


def spec_to_json(spec: list[Layer]) -> list[dict]:
    return [layer.to_dict() for layer in spec]


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def layer_output_shape(layer: Layer, shape: tuple) -> tuple:
    """The output shape of ``layer`` for input ``shape`` ((C, H, W) or (F,)); raises ModelError."""
    p, kind = layer.params, layer.kind

    def need_image():
        if len(shape) != 3:
            raise ModelError(f"layer {layer.name} ({kind}) needs an image input (C, H, W), "
                             f"got shape {shape}; put it before 'flatten'")

    if kind == "conv":
        need_image()
        c, h, w = shape
        k, s, pad = p["k"], p["stride"], p["pad"]
        if s < 1:
            raise ModelError(f"layer {layer.name}: stride must be at least 1, got {s}")
        if pad < 0:
            raise ModelError(f"layer {layer.name}: pad must be 0 or more, got {pad}")
        if k > h + 2 * pad or k > w + 2 * pad:
            raise ModelError(f"layer {layer.name}: a {k}x{k} kernel is larger than its padded input "
                             f"{h + 2 * pad}x{w + 2 * pad}; the input is too small for this model")
        return (p["out"], _out(h, k, s, pad), _out(w, k, s, pad))
    if kind in ("maxpool", "avgpool"):
        need_image()
        c, h, w = shape
        k, s = p["k"], p["stride"] or p["k"]
        if k > h or k > w:
            raise ModelError(f"layer {layer.name}: a {k}x{k} pool is larger than its input {h}x{w}; "
                             "the input is too small for this model")
        return (c, _out(h, k, s, 0), _out(w, k, s, 0))
    if kind == "gap":
        need_image()
        return (shape[0],)
    if kind == "flatten":
        n = 1
        for d in shape:
            n *= d
        return (n,)
    if kind == "linear":
        if len(shape) != 1:
            raise ModelError(f"layer {layer.name} (linear) needs a flat input; add 'flatten' before it")
        return (p["out"],)
    return tuple(shape)  # relu, batchnorm, dropout keep the shape


def infer_shapes(spec: list[Layer], in_shape: tuple) -> list[tuple]:
    """Output shape of every layer for an input of shape (C, H, W)."""
    shapes, shape = [], tuple(in_shape)
    for layer in spec:
        shape = layer_output_shape(layer, shape)
        shapes.append(shape)
    return shapes


def layer_param_count(layer: Layer, in_shape: tuple) -> int:
    p = layer.params
    if layer.kind == "conv":
        return p["out"] * in_shape[0] * p["k"] * p["k"] + (p["out"] if p["bias"] else 0)
    if layer.kind == "linear":
        return p["out"] * in_shape[0] + (p["out"] if p["bias"] else 0)
    if layer.kind == "batchnorm":
        return 2 * in_shape[0]
    return 0


def count_params(spec: list[Layer], in_shape: tuple) -> int:
    total, shape = 0, tuple(in_shape)
    for layer in spec:
        total += layer_param_count(layer, shape)
        shape = layer_output_shape(layer, shape)
    return total


def describe(spec: list[Layer], in_shape: tuple) -> list[dict]:
    """One row per layer: name, kind, text, output shape, parameter count."""
    rows, shape = [], tuple(in_shape)
    for layer in spec:
        params = layer_param_count(layer, shape)
        shape = layer_output_shape(layer, shape)
        rows.append({"name": layer.name, "kind": layer.kind, "layer": str(layer),
                     "output_shape": list(shape), "params": params})
    return rows

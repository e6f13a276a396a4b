"""Named models. Each factory takes the input shape (C, H, W) and the class count
and returns a spec, so the same name fits 8x8 digits and 32x32 photos.

    >>> from seethrough.models import create_spec, list_models
    >>> [str(l) for l in create_spec("logreg", (1, 8, 8), 10)]
    ['flatten', 'linear(out=10)']
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import ModelError
from .spec import Layer, check_output, infer_shapes, make_spec

MODELS: dict[str, Callable[[tuple, int], list]] = {}
DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str):
    def deco(factory):
        MODELS[name] = factory
        DESCRIPTIONS[name] = description
        return factory
    return deco


@register("logreg", "logistic regression: one linear layer on the pixels")
def logreg(in_shape, n_classes):
    return ["flatten", f"linear(out={n_classes})"]


@register("mlp", "two hidden layers of 128 units with ReLU")
def mlp(in_shape, n_classes):
    return ["flatten", "linear(out=128)", "relu", "linear(out=128)", "relu", f"linear(out={n_classes})"]


@register("seed-cnn", "the Keras CIFAR-10 tutorial network: conv32-pool-conv64-pool-conv64-dense64")
def seed_cnn(in_shape, n_classes):
    return ["conv(out=32, k=3)", "relu", "maxpool(k=2)",
            "conv(out=64, k=3)", "relu", "maxpool(k=2)",
            "conv(out=64, k=3)", "relu",
            "flatten", "linear(out=64)", "relu", f"linear(out={n_classes})"]


@register("tinyvgg", "two VGG blocks of two 3x3 convs (padded) and a 2x2 max pool")
def tinyvgg(in_shape, n_classes, width=16):
    block = [f"conv(out={width}, k=3, pad=1)", "relu", f"conv(out={width}, k=3, pad=1)", "relu", "maxpool(k=2)"]
    return block + block + ["flatten", f"linear(out={n_classes})"]


@register("smallcnn", "a small CNN for small images: conv32-conv32-pool-conv64-pool-dropout-linear (padded)")
def smallcnn(in_shape, n_classes):
    return ["conv(out=32, k=3, pad=1)", "relu", "conv(out=32, k=3, pad=1)", "relu", "maxpool(k=2)",
            "conv(out=64, k=3, pad=1)", "relu", "maxpool(k=2)",
            "flatten", "dropout(p=0.3)", f"linear(out={n_classes})"]


@register("lenet5", "LeCun et al. 1998: conv6-pool-conv16-pool-fc120-fc84 (ReLU, average pooling)")
def lenet5(in_shape, n_classes):
    return ["conv(out=6, k=5, pad=2)", "relu", "avgpool(k=2)",
            "conv(out=16, k=5)", "relu", "avgpool(k=2)",
            "flatten", "linear(out=120)", "relu", "linear(out=84)", "relu", f"linear(out={n_classes})"]


def _whitened_blocks(in_shape, n_classes, widths, pool="max"):
    """Airbench-style (Jordan 2024, arXiv 2404.00498): a 2x2 patch-whitening conv (its weights
    are set from the data by the recipe), then per width a block conv-pool-bn-relu-conv-bn-relu,
    a final pool over what is left (``pool="max"``: a max pool sized for ``in_shape``; ``"gap"``:
    global average pooling, so the same weights take any input size), and a bias-free linear layer."""
    c, h, w = in_shape
    spec = [f"conv(out={2 * c * 4}, k=2)", "relu"]
    for width in widths:
        spec += [f"conv(out={width}, k=3, pad=1, bias=False)", "maxpool(k=2)", "batchnorm(momentum=0.4)", "relu",
                 f"conv(out={width}, k=3, pad=1, bias=False)", "batchnorm(momentum=0.4)", "relu"]
    if pool == "gap":
        return spec + ["gap", f"linear(out={n_classes}, bias=False)"]
    side = min(h, w) - 1
    for _ in widths:
        side //= 2
    return spec + ([f"maxpool(k={side})"] if side > 1 else []) + ["flatten", f"linear(out={n_classes}, bias=False)"]


@register("fastcifar", "fast CIFAR-10 net: 2x2 whitening conv, three conv-pool-bn blocks (64-128-256), linear")
def fastcifar(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (64, 128, 256))


@register("fastcifar-gap", "fastcifar ending in global average pooling: any input size (the bundled network)")
def fastcifar_gap(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (64, 128, 256), pool="gap")


@register("fastcifar-s-gap", "fastcifar-s ending in global average pooling: any input size, a quarter of fastcifar-gap's work")
def fastcifar_small_gap(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (32, 64, 128), pool="gap")


@register("fastcifar-s", "a narrower fastcifar (32-64-128) for a few minutes of CPU")
def fastcifar_small(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (32, 64, 128))


@register("fastcifar-l", "a wider fastcifar (64-256-256, the widths of airbench94) for the 45-minute recipe")
def fastcifar_large(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (64, 256, 256))


@register("fastcifar-xl", "a still wider fastcifar (128-384-384, the widths of airbench95), 2.5x fastcifar-l's work")
def fastcifar_xlarge(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (128, 384, 384))


@register("fastmnist", "fast 28x28 net: 2x2 whitening conv, three conv-pool-bn blocks (16-32-64), linear")
def fastmnist(in_shape, n_classes):
    return _whitened_blocks(in_shape, n_classes, (16, 32, 64))


def list_models() -> list[str]:
    return sorted(MODELS)


def create_spec(model, in_shape: tuple, n_classes: int) -> list[Layer]:
    """A checked spec for ``model``: a registered name, a JSON spec file, or a list of layers.

    Raises ModelError naming the valid models, the layer that does not fit ``in_shape``, or an
    output that is not one score per class.
    """
    if isinstance(model, (list, tuple)):
        spec = make_spec(model)
    elif str(model) in MODELS:
        spec = make_spec(MODELS[str(model)](tuple(in_shape), n_classes))
    elif str(model).endswith(".json") or Path(str(model)).is_file():
        spec = make_spec(str(model))
    else:
        raise ModelError(f"unknown model {model!r}; expected one of {', '.join(list_models())} "
                         "or a JSON spec file")
    c, h, w = in_shape
    name = model if isinstance(model, str) else "spec"
    try:
        infer_shapes(spec, in_shape)
    except ModelError as exc:  # the images are too small for it: say what would fit
        raise ModelError(f"model {name} does not fit {h}x{w}x{c} input: {exc}"
                         f"{_fit_hint(model, in_shape, n_classes)}") from None
    try:
        check_output(spec, in_shape, n_classes)
    except ModelError as exc:
        raise ModelError(f"model {name}: {exc}") from None
    return spec


def _fits(model, in_shape: tuple, n_classes: int) -> bool:
    try:
        named = isinstance(model, str) and model in MODELS
        spec = make_spec(MODELS[model](tuple(in_shape), n_classes)) if named else make_spec(model)
        check_output(spec, in_shape, n_classes)
        return True
    except ModelError:
        return False


def _fit_hint(model, in_shape: tuple, n_classes: int) -> str:
    """What would fit instead: the smallest image side ``model`` takes, and the models that take ``in_shape``."""
    c, h, w = in_shape
    hint = ""
    side = next((s for s in (16, 28, 32, 48, 64, 96, 128, 224) if _fits(model, (c, s, s), n_classes)), None)
    if side is not None:
        hint += (f"; it needs images of at least {side}x{side} (a larger data set such as "
                 f"{'mnist' if side <= 28 else 'cifar10'}, or an image folder with --size {side})")
    fitting = [m for m in list_models() if _fits(m, in_shape, n_classes)]
    if fitting:
        hint += f"; models that fit {h}x{w}x{c}: {', '.join(fitting)}"
    return hint

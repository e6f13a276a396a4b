"""Starting from a trained network: keep its layers, give it a new classifier for your classes.

    >>> from seethrough.transfer import transfer                 # doctest: +SKIP
    >>> model = transfer("cifar10", my_photos)                   # the bundled network, a new head
    >>> model = transfer("runs/mnist-fastmnist", my_digits, freeze=True)

:func:`transfer` copies every layer of a *source* (a run folder, or the network bundled in
``seethrough/weights/``) up to its last linear layer, the classifier, and puts a new linear layer
for the target's classes in its place. The returned :class:`~seethrough.trained.TrainedModel`
trains like any other; ``freeze=True`` keeps the copied weights fixed (only the new head
learns), and without it ``TrainConfig.body_lr_scale`` slows the copied layers down.
:func:`features_model` cuts the source at any named layer instead: a linear classifier on that
layer's frozen output ("logistic regression on a network's features").

The input is matched to the source by one rule (:func:`input_shape_for`, :func:`match_input`):

* channels: grayscale images are repeated into three equal channels for an RGB source; RGB
  images become grayscale (Pillow's ``L``: 0.299 R + 0.587 G + 0.114 B) for a grayscale one;
* size: a source whose body ends in global average pooling (``gap``) with no ``flatten``
  before it takes the images at their own size; any other source takes the source's input
  size, each image resized by the project's image rule (shorter side scaled, centre crop).

The source's input standardisation (mean and std) comes with the copied layers: they were
trained on inputs scaled that way. Batch-norm layers keep learning their running means and
variances on the new data (they are statistics, not weights), also under ``freeze``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .data.dataset import ImageDataset
from .data.images import image_to_array
from .errors import ModelError, RunError, SeethroughError
from .models.spec import Layer, infer_shapes
from .trained import Preprocess, TrainedModel

WEIGHTS = Path(__file__).parent / "weights"
BUNDLED = {"cifar10": WEIGHTS / "cifar10"}   # --from NAME -> the folder holding model.json and model.safetensors
# SHA-256 of each bundled model.safetensors, checked when it is loaded (tests/test_bundled.py too)
BUNDLED_SHA256 = {"cifar10": "cde5381fcb119d44c7da986985e58a34d61a8ce1201ac361515b8f3079db405a"}
BODY_LR_SCALE = 0.1  # the default learning-rate factor of copied layers when they are not frozen
HEAD_EPOCHS = 5      # the default epochs of the new last layer alone before the whole network trains
HEAD_LR_SCALE = 10.0  # ... at this times the learning rate

INPUT_RULE = ("channels: gray repeated to RGB, RGB to gray by luminance; size: the image's own when the body "
              "ends in global average pooling, else the source's input size (shorter side scaled, centre crop)")


def source_path(source) -> Path:
    """The run folder ``source`` names: a bundled network's name or a path; RunError otherwise."""
    name = str(source)
    if name in BUNDLED:
        return BUNDLED[name]
    path = Path(name)
    if not path.is_dir():
        raise RunError(f"--from {name!r}: not a run folder; expected a folder written by 'seethrough train' "
                       f"or a bundled network ({', '.join(BUNDLED)})")
    return path


def load_source(source) -> TrainedModel:
    """The source network, on the CPU; a bundled one is checked against its recorded SHA-256."""
    name = str(source)
    if name in BUNDLED:
        if not (BUNDLED[name] / "model.safetensors").is_file():
            raise RunError(f"--from {name}: the bundled network is missing from {BUNDLED[name]}; reinstall seethrough")
        if weights_sha256(name) != BUNDLED_SHA256[name]:
            raise RunError(f"--from {name}: {BUNDLED[name] / 'model.safetensors'} does not match its recorded "
                           "SHA-256; reinstall seethrough")
    return TrainedModel.load(source_path(source))


def weights_sha256(source) -> str:
    """SHA-256 of the source's model.safetensors (what the new run records as its origin)."""
    return hashlib.sha256((source_path(source) / "model.safetensors").read_bytes()).hexdigest()


def _head_index(model: TrainedModel) -> int:
    linears = [i for i, layer in enumerate(model.spec) if layer.kind == "linear"]
    if not linears:
        raise ModelError(f"{model.meta.get('model', 'the source')}: has no linear layer to replace")
    return linears[-1]


def layer_names(model: TrainedModel) -> list[str]:
    """The layers :func:`features_model` can cut at: all but the classifier."""
    return [layer.name for layer in model.spec[:_head_index(model)]]


def _has_weights(layers: list[Layer]) -> bool:
    return any(layer.kind in ("conv", "linear", "batchnorm") for layer in layers)


def check_body(name: str, body: list[Layer], freeze: bool) -> None:
    """One-line errors for a body that cannot serve: nothing to keep, or no convolutions."""
    if freeze and not _has_weights(body):
        raise ModelError(f"--freeze: {name} has no trained layers before its classifier to keep; "
                         "expected a source with layers before its last linear layer, e.g. --from cifar10")
    if not any(layer.kind == "conv" for layer in body):
        raise ModelError(f"--from {name}: a model without convolutions (its layers: "
                         f"{', '.join(str(layer) for layer in body) or 'none'} before the classifier) only "
                         "fits the pixels of its own images; expected a convolutional source, e.g. --from cifar10")


def size_free(body: list[Layer]) -> bool:
    """Whether ``body`` takes any image size: global average pooling, with no flatten before it."""
    for layer in body:
        if layer.kind == "gap":
            return True
        if layer.kind in ("flatten", "linear"):
            return False
    return False


def input_shape_for(source: TrainedModel, body: list[Layer], image_shape) -> tuple[int, int, int]:
    """The (H, W, C) the new model takes for target images of shape ``image_shape`` (the rule above)."""
    h, w, _ = image_shape
    sh, sw, sc = source.input_shape
    return (h, w, sc) if size_free(body) else (sh, sw, sc)


def match_input(data: ImageDataset, shape) -> ImageDataset:
    """``data`` with its images made ``shape`` = (H, W, C) by the rule above (unchanged if they are)."""
    h, w, c = shape
    images = data.images
    if images.shape[1:] == (h, w, c):
        return data
    if images.shape[-1] == 1 and c == 3:                          # (N, H, W, 1) -> (N, H, W, 3)
        images = np.repeat(images, 3, axis=-1)
    elif images.shape[-1] == 3 and c == 1:                        # luminance, as Pillow's "L"
        gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        images = np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]
    if images.shape[1:3] != (h, w):
        from PIL import Image

        images = np.stack([image_to_array(Image.fromarray(im[..., 0] if c == 1 else im), shape) for im in images])
    return ImageDataset(np.ascontiguousarray(images), data.labels, list(data.class_names), data.name, dict(data.info))


def _new_model(src: TrainedModel, name: str, body: list[Layer], head: list[Layer], data_shape, class_names,
               frozen: list[str], meta: dict, seed: int) -> TrainedModel:
    shape = input_shape_for(src, body, data_shape)
    h, w, c = shape
    spec = body + head
    try:
        infer_shapes(spec, (c, h, w))
    except ModelError as exc:
        raise ModelError(f"--from {name}: its layers do not fit {h}x{w}x{c} input ({exc})") from None
    torch.manual_seed(seed)
    model = TrainedModel(spec, shape, class_names, Preprocess(list(src.preprocess.mean), list(src.preprocess.std)),
                         meta=meta)
    kept = {layer.name for layer in body}
    state = {k: v for k, v in src.net.state_dict().items() if k.split(".")[0] in kept}
    model.net.load_state_dict(state, strict=False)
    params = {k for k, _ in model.net.named_parameters() if k.split(".")[0] in kept}
    model.meta["frozen"] = sorted(frozen if frozen is not None else
                                  params & set(src.meta.get("frozen", [])))
    for k, p in model.net.named_parameters():
        p.requires_grad_(k not in model.meta["frozen"])
    return model


def _origin(source, src: TrainedModel, body: list[Layer], **extra) -> dict:
    name = str(source)
    return {"source": name if name in BUNDLED else str(Path(name).resolve()), "bundled": name in BUNDLED,
            "sha256": weights_sha256(source), "source_model": src.meta.get("model"),
            "source_classes": src.class_names, "source_input_shape": list(src.input_shape),
            "layers": [layer.name for layer in body], "input_rule": INPUT_RULE, **extra}


def transfer(source, data: ImageDataset, *, freeze: bool = False, seed: int = 0) -> TrainedModel:
    """A new model for ``data``'s classes with every layer of ``source`` up to its classifier.

    Parameters
    ----------
    source : str or Path
        A run folder, or the name of a bundled network (``"cifar10"``).
    data : ImageDataset
        The target training images; only their shape and class names are read.
    freeze : bool
        Keep the copied weights fixed: only the new last linear layer trains.
    seed : int
        Seeds the new layer's random start.

    Returns
    -------
    TrainedModel
        Untrained head, copied body; ``meta["init_from"]`` records the source and its SHA-256.
        Feed it images made by :func:`match_input` for its ``input_shape``.
    """
    src = load_source(source)
    i = _head_index(src)
    body, old_head = src.spec[:i], src.spec[i]
    check_body(str(source), body, freeze)
    head = [Layer("linear", old_head.name, {**old_head.params, "out": data.n_classes})]
    params = [f"{layer.name}.{p}" for layer in body for p in ("weight", "bias")]
    model = _new_model(src, str(source), body, head, data.image_shape, data.class_names,
                       None if not freeze else _existing(src, params), {}, seed)
    model.meta.update(model=src.meta.get("model", "custom"), normalize=src.meta.get("normalize", "standard"),
                      dataset=data.name, init_from=_origin(source, src, body, freeze=freeze))
    return model


def _existing(src: TrainedModel, names: list[str]) -> list[str]:
    have = {k for k, _ in src.net.named_parameters()}
    return [n for n in names if n in have]


def parse_features(text: str) -> tuple[str, str | None]:
    """``"SOURCE[:LAYER]"`` -> (source, layer or None); a bundled name or a path may hold no colon."""
    source, sep, layer = str(text).rpartition(":")
    if not sep or not layer or "/" in layer:
        return str(text), None
    return source, layer


def features_model(source, data: ImageDataset, layer: str | None = None, *, seed: int = 0) -> TrainedModel:
    """Logistic regression on ``source``'s frozen features at ``layer`` (default: all but its classifier).

    The model is the source's layers up to and including ``layer``, frozen, then ``flatten`` if
    the layer's output is still an image, then one new linear layer: trained with cross-entropy,
    that is multinomial logistic regression on the features. A bad ``layer`` raises ModelError
    listing the layers there are.
    """
    src = load_source(source)
    names = layer_names(src)
    if layer is None:
        body = src.spec[:_head_index(src)]
    elif layer not in names:
        raise ModelError(f"--features {source}:{layer}: no layer {layer!r}; its layers are {', '.join(names)}")
    else:
        body = src.spec[:names.index(layer) + 1]
    check_body(str(source), body, freeze=True)
    shape = input_shape_for(src, body, data.image_shape)
    out = infer_shapes(body, (shape[2], shape[0], shape[1]))[-1]
    head = ([Layer("flatten", "flatten_features", {})] if len(out) == 3 else []) + \
        [Layer("linear", "linear_features", {"out": data.n_classes, "bias": True})]
    params = [f"{layer.name}.{p}" for layer in body for p in ("weight", "bias")]
    model = _new_model(src, str(source), body, head, data.image_shape, data.class_names,
                       _existing(src, params), {}, seed)
    model.meta.update(model="logreg", normalize=src.meta.get("normalize", "standard"), dataset=data.name,
                      init_from=_origin(source, src, body, freeze=True, features=body[-1].name))
    return model


def run_model_name(init_from=None, features=None) -> str:
    """What a run started this way is named after: the source's model, or ``logreg-features``."""
    if features:
        return "logreg-features"
    return str(TrainedModel.load(source_path(init_from)).meta.get("model", "custom")) if init_from else "custom"


def start_from(init_from=None, features=None, *, freeze: bool = False, splits: dict, seed: int = 0):
    """The model ``train --from SOURCE`` / ``--features SOURCE[:LAYER]`` starts with, and ``splits``
    ({"train", "test", ...} ImageDatasets) matched to its input by the rule above.

    Returns (model, matched splits). Exactly one of ``init_from`` and ``features`` is given.
    """
    if init_from and features:
        raise SeethroughError("--from and --features start from a network in two different ways; give one of them")
    train = splits["train"]
    if features:
        source, layer = parse_features(features)
        model = features_model(source, train, layer, seed=seed)
    else:
        model = transfer(init_from, train, freeze=freeze, seed=seed)
    return model, {k: match_input(v, model.input_shape) for k, v in splits.items()}


def bundle(run_dir, test: ImageDataset, name: str = "cifar10", out=None, n_check: int = 200) -> Path:
    """Copy a trained run into the package as bundled network ``name``.

    model.json gains ``bundled``: the run it came from, the test accuracy of the stored weights
    on all of ``test`` and the predictions of its first ``n_check`` images, which the test suite
    compares against.
    """
    import json

    from safetensors.torch import save_file

    from . import _io

    src = TrainedModel.load(run_dir)
    folder = Path(out) if out else WEIGHTS / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in src.net.state_dict().items()}
    with _io.atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "seethrough-run"})
    info = json.loads((Path(run_dir) / "model.json").read_text())
    _io.write_json(folder / "model.json", info)
    stored = TrainedModel.load(folder)                        # what users get
    pred = stored.predict(test.images)
    info["bundled"] = {"name": name, "from_run": Path(run_dir).name,
                       "test_set": test.name, "test_images": int(len(test)),
                       "test_accuracy": float((pred == test.labels).mean()),
                       "check_predictions": pred[:n_check].tolist()}
    _io.write_json(folder / "model.json", info)
    return folder



def warm_head(model: TrainedModel, data: ImageDataset, config, **fit_options) -> list[dict]:
    """Train only ``model``'s last linear layer for ``config.head_epochs`` epochs, then leave every layer trainable
    as before (linear probing, then fine-tuning: Kumar et al., ICLR 2022, arXiv:2202.10054).

    A new last layer starts at random; trained together with the copied layers from the first
    step, its large early gradients also move them. Trained alone first (at ``HEAD_LR_SCALE``
    times ``config.lr``: nothing else moves), it starts the whole-network phase near a good
    fit. Nothing is written; returns the warm-up's history.
    """
    from dataclasses import replace

    from .train import fit

    head = model.spec[-1].name
    trainable = {name: p.requires_grad for name, p in model.net.named_parameters()}
    for name, p in model.net.named_parameters():
        p.requires_grad_(trainable[name] and name.split(".")[0] == head)
    try:
        cfg = replace(config, epochs=config.head_epochs, lr=config.lr * HEAD_LR_SCALE, body_lr_scale=None, head_epochs=0,
                      patience=None)
        return fit(model, data, cfg, **fit_options)
    finally:
        for name, p in model.net.named_parameters():
            p.requires_grad_(trainable[name])


if __name__ == "__main__":  # python -m seethrough.transfer RUN [DATA_DIR]: bundle a CIFAR-10 run as "cifar10"
    import sys

    from .data import load_splits

    _run, _data_dir = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    _folder = bundle(_run, load_splits("cifar10", data_dir=_data_dir)["test"])
    print(f"{_folder}: sha256 {weights_sha256('cifar10')}")


"""Learning over time: the first layer's weights and one image's feature maps, every epoch.

``fit(..., on_epoch=Snapshots(run_dir, image))`` writes, after each epoch,

    <run>/snapshots/epoch-001.safetensors   first-layer weights and the image's feature maps
    <run>/snapshots/index.json              the epochs, layer names, and the fixed image

For a model that starts with a conv layer the first-layer weights are its kernels
(out, in, k, k); for one that starts with flatten and linear they are the first units'
weights reshaped to the image (units, H, W, C). Feature maps are kept for every
image-shaped layer, at most ``max_maps`` channels each. Safetensors and JSON only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .. import _io
from ..errors import RunError
from ..run import SNAPSHOTS as FOLDER
from .views import feature_maps



def first_layer_weights(model) -> tuple[str, str, np.ndarray]:
    """(layer name, "kernels" or "weights", array) for the model's first layer with weights."""
    first = next(l for l in model.spec if l.kind in ("conv", "linear"))
    w = model.net.get_submodule(first.name).weight.detach().cpu().float().numpy()
    if first.kind == "conv":
        return first.name, "kernels", w                                   # (out, in, k, k)
    c, h, wd = model.in_chw
    if w.shape[1] != c * h * wd:
        return first.name, "weights", w[:16]                               # (units, F)
    return first.name, "weights", w[:16].reshape(-1, c, h, wd).transpose(0, 2, 3, 1)  # (units, H, W, C)


class Snapshots:
    """An ``on_epoch`` callback for :func:`~seethrough.train.fit`."""

    def __init__(self, run_dir, image: np.ndarray, max_maps: int = 8, label: str = ""):
        self.dir = Path(run_dir) / FOLDER
        self.image = np.asarray(image, np.uint8)
        self.max_maps = max_maps
        self.label = label

    def __call__(self, epoch: int, model) -> Path:
        was_training = model.net.training
        layer, kind, weights = first_layer_weights(model)
        tensors = {"first_layer": np.ascontiguousarray(weights)}
        layers = []
        for name, fmap in feature_maps(model, self.image):
            if fmap.ndim == 3:
                tensors[f"maps.{name}"] = np.ascontiguousarray(fmap[:self.max_maps], np.float32)  # (c, h, w)
                layers.append(name)
        model.net.train(was_training)
        path = self.dir / f"epoch-{epoch + 1:03d}.safetensors"
        with _io.atomic_path(path) as tmp:
            save_file(tensors, str(tmp))
        index = read_index(self.dir.parent) if (self.dir / "index.json").is_file() else {}
        epochs = sorted(set(index.get("epochs", [])) | {epoch + 1})
        _io.write_json(self.dir / "index.json", {
            "epochs": epochs, "first_layer": layer, "first_layer_kind": kind, "map_layers": layers,
            "image": self.image.tolist(), "image_label": self.label, "max_maps": self.max_maps})
        return path


def read_index(run_dir) -> dict:
    path = Path(run_dir) / FOLDER / "index.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: cannot read the snapshot index ({exc})") from None


def load_snapshots(run_dir) -> tuple[dict, list[tuple[int, dict]]]:
    """(index, [(epoch, {name: array}), ...]) of a run trained with snapshots; ({}, []) without."""
    if not (Path(run_dir) / FOLDER / "index.json").is_file():
        return {}, []
    index = read_index(run_dir)
    out = []
    for e in index["epochs"]:
        path = Path(run_dir) / FOLDER / f"epoch-{e:03d}.safetensors"
        if path.is_file():
            out.append((e, load_file(str(path))))
    index["image"] = np.asarray(index["image"], np.uint8)
    return index, out


__all__ = ["Snapshots", "first_layer_weights", "load_snapshots"]

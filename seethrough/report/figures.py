"""Report figures built from a trained model: each returns PNG bytes."""

from __future__ import annotations

import numpy as np

from ..data.dataset import ImageDataset
from ..evaluate import Evaluation
from ..explain import feature_maps, kernels, weight_maps
from ..trained import TrainedModel
from ..viz import (confusion_figure, curves_figure, fig_to_png, grid_figure, image_grid_figure,  # noqa: F401
                   weight_maps_figure)


def confusion_png(ev: Evaluation, title: str) -> bytes:
    return fig_to_png(confusion_figure(ev.confusion, ev.class_names, title))


def weight_maps_png(model: TrainedModel) -> bytes:
    maps = weight_maps(model).mean(-1)  # (K, H, W): channels averaged for colour inputs
    return fig_to_png(weight_maps_figure(maps, [f"class {c}" for c in model.class_names],
                                         "Logistic-regression weights per class"))


def kernels_png(model: TrainedModel, layer: str | None = None) -> bytes:
    k = kernels(model, layer)  # (out, in, kh, kw)
    shown = k.transpose(0, 2, 3, 1) if k.shape[1] == 3 else k[:, 0]
    return fig_to_png(grid_figure(shown, [f"{i}" for i in range(len(k))], symmetric=k.shape[1] != 3,
                                  suptitle="First-layer kernels", cols=8, size=0.9))


def feature_maps_pngs(model: TrainedModel, image: np.ndarray, max_channels: int = 16) -> list[tuple[str, bytes]]:
    """One figure per image-shaped layer output: [(caption, png), ...]."""
    out = []
    for name, fmap in feature_maps(model, image):
        if fmap.ndim != 3:
            continue
        c, h, w = fmap.shape
        shown = fmap[:max_channels]
        out.append((f"{name}: {c} maps of {h}x{w}" + (f" (first {max_channels})" if c > max_channels else ""),
                    fig_to_png(grid_figure(shown, [str(i) for i in range(len(shown))], cols=8, size=0.8))))
    return out


def wrong_png(ev: Evaluation, data: ImageDataset, limit: int = 32) -> bytes | None:
    idx = ev.wrong[:limit]
    if len(idx) == 0:
        return None
    names = ev.class_names
    titles = [f"true {names[ev.y_true[i]]}\npred {names[ev.y_pred[i]]} ({ev.proba[i, ev.y_pred[i]]:.0%})"
              for i in idx]
    return fig_to_png(image_grid_figure(data.images[idx], titles))


def curves_png(history: list[dict], title: str) -> bytes:
    return fig_to_png(curves_figure(history, title))

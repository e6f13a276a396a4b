"""Matplotlib figures for confusion matrices, weight maps, kernels, feature maps and curves.

Every function takes plain arrays and returns a ``Figure``; :func:`fig_to_png`
turns one into PNG bytes for a file or an HTML report.
"""

from __future__ import annotations

import io
import math

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # draw off-screen, except in a notebook, which keeps its inline backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import _io  # noqa: E402


def fig_to_png(fig, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def save_png(fig, path, dpi: int = 100):
    _io.write_bytes(path, fig_to_png(fig, dpi))
    return path


def confusion_figure(cm: np.ndarray, class_names: list[str], title: str = "Confusion matrix"):
    k = len(class_names)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = cm.max() if cm.size else 1
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > top / 2 else "black")
    return fig


def _grid(n: int, cols: int | None = None) -> tuple[int, int]:
    cols = cols or min(n, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def weight_maps_figure(maps: np.ndarray, titles: list[str], suptitle: str = ""):
    """Diverging heatmaps (red positive, blue negative, one symmetric scale) of (K, H, W) maps."""
    rows, cols = _grid(len(maps), min(len(maps), 5))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.1 * rows + 0.4), squeeze=False)
    lim = float(np.abs(maps).max()) or 1.0
    im = None
    for ax, m, t in zip(axes.flat, maps, titles):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(t, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.7, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def grid_figure(arrays: np.ndarray, titles: list[str] | None = None, cmap: str = "viridis",
                cols: int | None = None, suptitle: str = "", size: float = 1.1, symmetric: bool = False,
                row_labels: list[str] | None = None):
    """A grid of (N, H, W) or (N, H, W, 3) arrays, each scaled on its own; ``row_labels`` go
    left of each row (where they cannot overlap a neighbour's title)."""
    n = len(arrays)
    rows, cols = _grid(n, cols)
    extra = 0.6 if row_labels else 0
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + extra, size * rows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if row_labels and i % cols == 0 and i // cols < len(row_labels):
            ax.set_ylabel(row_labels[i // cols], rotation=0, ha="right", va="center", fontsize=8)
        if i >= n:
            continue
        a = arrays[i]
        if a.ndim == 3 and a.shape[-1] == 3:
            lo, hi = a.min(), a.max()
            ax.imshow((a - lo) / (hi - lo + 1e-12))
        elif symmetric:
            lim = float(np.abs(a).max()) or 1.0
            ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            ax.imshow(a, cmap=cmap)
        if titles:
            ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def image_grid_figure(images: np.ndarray, titles: list[str], cols: int = 8, size: float = 1.3):
    """uint8 (N, H, W, C) images with a caption each (gray for one channel)."""
    n = len(images)
    rows, cols = _grid(max(n, 1), min(cols, max(n, 1)))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size + 0.3) * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = images[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=255)
            ax.set_title(titles[i], fontsize=7)
    return fig


def curves_figure(history: list[dict], title: str = "Training"):
    """Loss and accuracy per epoch, train and validation."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    ep = [r["epoch"] for r in history]
    for key, ax in (("loss", a), ("acc", b)):
        for part in ("train", "val"):
            vals = [r.get(f"{part}_{key}") for r in history]
            if any(v is not None for v in vals):
                ax.plot(ep, vals, marker="o", ms=3, label=part)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def reliability_figure(bins: list[tuple[str, dict]], title: str = "Reliability diagram"):
    """Accuracy against confidence per bin, one panel per ``(label, reliability dict)``.

    Each dict is :func:`seethrough.calibrate.reliability`'s output. Bars: the accuracy in each
    confidence bin (grey where the bin is empty); the diagonal is perfect calibration; the gap
    between a bar's top and the diagonal is what the ECE averages.
    """
    fig, axes = plt.subplots(1, len(bins), figsize=(3.6 * len(bins), 3.6), squeeze=False)
    for ax, (label, r) in zip(axes[0], bins):
        edges, count = r["edges"], r["count"]
        width = np.diff(edges)
        full = count > 0
        ax.bar(edges[:-1][full], r["accuracy"][full], width[full], align="edge", color="#4c72b0",
               edgecolor="white", label="accuracy")
        ax.bar(edges[:-1][full], r["confidence"][full] - r["accuracy"][full], width[full],
               bottom=r["accuracy"][full], align="edge", color="#dd8452", alpha=0.45, edgecolor="white",
               label="gap to confidence")
        ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{label}: ECE {r['ece']:.3f}", fontsize=10)
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig

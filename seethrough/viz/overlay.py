"""A heatmap drawn over the image it explains, with a colour scale.

Unsigned maps (saliency, Grad-CAM, ...) use one sequential colour map from 0 to their
largest value; signed maps (integrated gradients, weight maps) a diverging one
symmetric around 0, red for evidence for the class and blue against it.
"""

from __future__ import annotations

import numpy as np

from .figures import fig_to_png, plt


def _show_image(ax, image: np.ndarray):
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image)


def overlay_figure(image: np.ndarray, heat: np.ndarray, title: str = "", signed: bool = False,
                   alpha: float = 0.55, label: str = "attribution", size: float = 3.2):
    """uint8 (H, W, C) image and float (H, W) map at the same size -> Figure with a colour bar."""
    heat = np.asarray(heat, float)
    fig, ax = plt.subplots(figsize=(size + 0.9, size))
    _show_image(ax, image)
    if signed:
        lim = float(np.abs(heat).max()) or 1.0
        im = ax.imshow(heat, cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=alpha)
    else:
        im = ax.imshow(heat, cmap="jet", vmin=min(0.0, float(heat.min())), vmax=float(heat.max()) or 1.0,
                       alpha=alpha)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    return fig


def overlay_png(image: np.ndarray, heat: np.ndarray, title: str = "", signed: bool = False, **kwargs) -> bytes:
    return fig_to_png(overlay_figure(image, heat, title, signed, **kwargs))


def overlay_row_figure(image: np.ndarray, heats: list[tuple[str, np.ndarray, bool]], title: str = "",
                       size: float = 1.9, alpha: float = 0.55):
    """The image, then each (caption, map, signed) over it, in one row with a colour bar each."""
    n = len(heats) + 1
    fig, axes = plt.subplots(1, n, figsize=(size * n * 1.25, size + 0.4), squeeze=False)
    _show_image(axes[0, 0], image)
    axes[0, 0].set_title("input", fontsize=8)
    for ax, (caption, heat, signed) in zip(axes[0, 1:], heats):
        _show_image(ax, image)
        lim = float(np.abs(heat).max()) or 1.0
        im = ax.imshow(heat, cmap="RdBu_r" if signed else "jet", vmin=-lim if signed else 0, vmax=lim, alpha=alpha)
        ax.set_title(caption, fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig

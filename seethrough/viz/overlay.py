"""A heatmap drawn over the image it explains, with a colour scale.

Unsigned maps (saliency, SmoothGrad, Grad-CAM) use one sequential colour map from 0 to
their largest value; signed maps (occlusion, integrated gradients, weight maps, weight x
input) a diverging one centred at 0 and symmetric around it, red for evidence for the
class and blue against it, so their negative part is drawn, not clipped. A map that is
constant shows nothing: it is not drawn as an empty heatmap but labelled as constant.
Pixels are drawn as squares (no smoothing), so an 8x8 digit stays legible.
"""

from __future__ import annotations

import numpy as np

from .figures import fig_to_png, plt

SEQUENTIAL, DIVERGING = "inferno", "RdBu_r"


def _show_image(ax, image: np.ndarray, alpha: float = 1.0):
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest", alpha=alpha)
    else:
        ax.imshow(image, interpolation="nearest", alpha=alpha)


def is_constant(heat: np.ndarray) -> bool:
    heat = np.asarray(heat, float)
    return not np.isfinite(heat).all() or float(heat.max()) == float(heat.min())


def draw_heat(ax, image: np.ndarray, heat: np.ndarray, signed: bool, alpha: float = 0.55):
    """The image with ``heat`` over it on ``ax``; the mappable for a colour bar, or None for a constant map."""
    heat = np.asarray(heat, float)
    _show_image(ax, image)
    ax.axis("off")
    if is_constant(heat):
        value = float(heat.flat[0]) if heat.size else float("nan")
        ax.text(0.5, 0.5, f"constant map\n({value:g} everywhere):\nnothing to show", transform=ax.transAxes,
                ha="center", va="center", fontsize=8, color="black",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#c00"})
        return None
    if signed:
        lim = float(np.abs(heat).max())
        return ax.imshow(heat, cmap=DIVERGING, vmin=-lim, vmax=lim, alpha=alpha, interpolation="nearest")
    return ax.imshow(heat, cmap=SEQUENTIAL, vmin=min(0.0, float(heat.min())), vmax=float(heat.max()),
                     alpha=alpha, interpolation="nearest")


def overlay_figure(image: np.ndarray, heat: np.ndarray, title: str = "", signed: bool = False,
                   alpha: float = 0.55, label: str = "attribution", size: float = 3.2):
    """uint8 (H, W, C) image and float (H, W) map at the same size -> Figure with a colour bar."""
    fig, ax = plt.subplots(figsize=(size + 0.9, size), layout="constrained")
    im = draw_heat(ax, image, heat, signed, alpha)
    if title:
        ax.set_title(title, fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    return fig


def overlay_png(image: np.ndarray, heat: np.ndarray, title: str = "", signed: bool = False, **kwargs) -> bytes:
    return fig_to_png(overlay_figure(image, heat, title, signed, **kwargs))


def explain_figure(image: np.ndarray, heat: np.ndarray, title: str, signed: bool = False, label: str = "attribution",
                   size: float = 3.0, alpha: float = 0.55):
    """What ``seethrough explain`` writes: the input beside the map over it, the title above both."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(2 * size + 1.0, size + 0.5), layout="constrained")
    _show_image(a, image)
    a.axis("off")
    a.set_title("input", fontsize=9)
    im = draw_heat(b, image, heat, signed, alpha)
    b.set_title(f"{label} ({'signed: red for, blue against' if signed else 'unsigned'})", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=b, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    return fig


def explain_png(image: np.ndarray, heat: np.ndarray, title: str, signed: bool = False, **kwargs) -> bytes:
    return fig_to_png(explain_figure(image, heat, title, signed, **kwargs), dpi=110)


def overlay_row_figure(image: np.ndarray, heats: list[tuple[str, np.ndarray, bool]], title: str = "",
                       size: float = 1.9, alpha: float = 0.55):
    """The image, then each (caption, map, signed) over it, in one row with a colour bar each."""
    n = len(heats) + 1
    fig, axes = plt.subplots(1, n, figsize=(size * n * 1.45, size + 0.5), squeeze=False, layout="constrained")
    _show_image(axes[0, 0], image)
    axes[0, 0].axis("off")
    axes[0, 0].set_title("input", fontsize=8)
    for ax, (caption, heat, signed) in zip(axes[0, 1:], heats):
        im = draw_heat(ax, image, heat, signed, alpha)
        ax.set_title(caption, fontsize=8)
        if im is not None:
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig

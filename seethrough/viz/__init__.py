"""Drawing: matplotlib figures from the arrays the library computes. Nothing here computes."""

from .figures import (confusion_figure, curves_figure, fig_to_png, grid_figure, image_grid_figure,
                      reliability_figure, save_png, weight_maps_figure)
from .overlay import explain_figure, explain_png, overlay_figure, overlay_png, overlay_row_figure

__all__ = ["confusion_figure", "curves_figure", "explain_figure", "explain_png", "fig_to_png", "grid_figure",
           "image_grid_figure", "overlay_figure", "overlay_png", "overlay_row_figure", "reliability_figure", "save_png",
           "weight_maps_figure"]

"""Explanations: model views and attribution methods. Methods return arrays; viz draws them."""

from .views import feature_maps, kernels, layer_names, weight_maps

__all__ = ["feature_maps", "kernels", "layer_names", "weight_maps"]

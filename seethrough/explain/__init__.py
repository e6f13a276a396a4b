"""Explanations: model views and attribution methods. Methods return arrays; viz draws them.

- views: :func:`weight_maps`, :func:`kernels`, :func:`feature_maps`, :func:`receptive_fields`;
- attribution methods (one module each, paper cited at the top), run through :func:`explain`:
  saliency, smoothgrad, gradcam, occlusion, integrated_gradients, weight_map, weight_x_input;
- :mod:`.faithfulness`: deletion and insertion curves, the model-randomization check.

The package itself is callable: ``seethrough.explain(model, image, method="gradcam")`` is
:func:`explain`.
"""

import sys
import types

from .base import Explainer
from .receptive import Field, receptive_field_table, receptive_fields
from .registry import METHODS, applicable_methods, explain, get_method, list_methods, make_explainer
from .views import feature_maps, kernels, layer_names, weight_maps

__all__ = ["Explainer", "Field", "METHODS", "applicable_methods", "explain", "feature_maps", "get_method",
           "kernels", "layer_names", "list_methods", "make_explainer", "receptive_field_table",
           "receptive_fields", "weight_maps"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

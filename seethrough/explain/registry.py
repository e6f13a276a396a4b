"""The attribution methods by name, and :func:`explain`, the one call that runs any of them.

    >>> import seethrough as st                                     # doctest: +SKIP
    >>> heat = st.explain(model, "cat.png", method="gradcam")       # (H, W) float32
"""

from __future__ import annotations

from ..errors import ModelError
from .base import Explainer, as_model
from .gradcam import GradCAM
from .integrated_gradients import IntegratedGradients
from .linear import WeightMap, WeightXInput
from .occlusion import Occlusion
from .saliency import Saliency
from .smoothgrad import SmoothGrad

METHODS: dict[str, type[Explainer]] = {cls.name: cls for cls in (
    Saliency, SmoothGrad, GradCAM, Occlusion, IntegratedGradients, WeightMap, WeightXInput)}


def list_methods() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> type[Explainer]:
    if name not in METHODS:
        raise ModelError(f"unknown explanation method {name!r}; expected one of {', '.join(METHODS)} or all")
    return METHODS[name]


def applicable_methods(model) -> list[str]:
    """The methods that can explain ``model`` (Grad-CAM needs a conv layer, weight maps a linear model)."""
    model = as_model(model)
    out = []
    for name, cls in METHODS.items():
        try:
            cls.check_model(model)
        except ModelError:
            continue
        out.append(name)
    return out


def make_explainer(model, method: str = "gradcam", **options) -> Explainer:
    return get_method(method)(model, **options)


def explain(model, images, method: str = "gradcam", *, target=None, layer=None, **options):
    """Attribution maps of ``images`` by ``method``: float32 (H, W) for one image, (N, H, W) for several.

    ``model`` is a TrainedModel or a fitted estimator with ``.model_``; ``images`` a path, an
    array of any size and mode, a list of those, or a uint8 (N, H, W, C) batch at the model's
    size. ``target`` is the class to explain (index or name; the predicted class by default),
    ``layer`` the layer Grad-CAM reads (the last conv layer by default). Other keyword options
    go to the method (e.g. ``samples=`` for smoothgrad, ``patch=`` for occlusion).
    """
    cls = get_method(method)
    if layer is not None:
        if not cls.uses_layer:
            raise ModelError(f"method {method} does not use a layer; --layer applies to gradcam")
        options["layer"] = layer
    with cls(model, **options) as explainer:
        return explainer(images, target=target)

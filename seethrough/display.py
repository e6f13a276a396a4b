"""How seethrough's objects draw themselves in a Jupyter notebook.

Each class draws itself in its own layer (so nothing low imports this module); they are
collected here, with the one thing that lives here, the explanation object:

- :func:`model_html`: a :class:`~seethrough.trained.TrainedModel`'s layer table (name, layer,
  output shape, parameters);
- :func:`evaluation_html`: accuracy, the per-class table and the confusion matrix as a picture;
- :func:`dataset_html`: a grid of sample images, one row per class;
- :func:`lesson_html`: a lesson's page (``seethrough.lesson("convolution")``);
- :class:`Explanation` (from :func:`explanation`): attribution maps with the image under them.
  ``seethrough.explain`` still returns plain arrays; ``seethrough.explanation`` runs the same
  methods and returns this object, whose ``maps`` hold those arrays;
- :class:`NotebookProgress`: the training progress bar inside a notebook.

The HTML is a fragment (no ``<html>``/``<body>``) styled under one class, ``st-out``, so it
does not restyle the notebook around it. Pictures are embedded as base64 PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data.preview import dataset_html, mosaic_png  # noqa: F401
from .evaluate import confusion_png, evaluation_html  # noqa: F401
from .htmlparts import esc, image, wrap
from .lessons.render import notebook_html as lesson_html  # noqa: F401
from .train.progress import NotebookProgress, bar_html, in_notebook, progress_bar  # noqa: F401
from .trained import model_html  # noqa: F401


# ---------------------------------------------------------------------------------- explanations
@dataclass
class Explanation:
    """Attribution maps of some images, drawn over them in a notebook.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W, C)
        The images at the model's input size.
    maps : dict of str to ndarray
        Method name -> float32 (N, H, W) map, what ``seethrough.explain`` returns for it.
    predicted : list of str
        The class each image is predicted to be (and explained for, unless ``target`` was given).
    target : str or None
    """

    images: np.ndarray
    maps: dict
    predicted: list
    target: str | None = None
    signed: dict = field(default_factory=dict)  # method -> True for signed maps (drawn red/blue)

    def __getitem__(self, method: str) -> np.ndarray:
        return self.maps[method]

    def _repr_html_(self) -> str:
        return explanation_html(self)


def explanation(model, images, method="gradcam", *, target=None, layer=None, **options) -> Explanation:
    """Run one or several attribution methods (``method`` a name or a list) and keep the images.

    Same arguments as :func:`seethrough.explain`; the result shows the overlays in a notebook and
    holds the arrays in ``.maps[method]`` as (N, H, W).
    """
    from .explain import explain
    from .explain.base import as_model

    tm = as_model(model)
    batch = _as_batch(tm, images)
    methods = [method] if isinstance(method, str) else list(method)
    maps = {}
    for m in methods:
        heat = explain(tm, batch, method=m, target=target, layer=layer if m == "gradcam" else None, **options)
        maps[m] = np.asarray(heat).reshape(len(batch), *batch.shape[1:3])
    predicted = [tm.class_names[i] for i in tm.predict(batch)]
    signed = {m: m in ("integrated_gradients", "weight_map", "weight_x_input") for m in methods}
    return Explanation(batch, maps, predicted, None if target is None else str(target), signed)


def _as_batch(model, images) -> np.ndarray:
    """A path, an array, or a list of those -> uint8 (N, H, W, C) at the model's input size."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return np.stack([model.to_input(im) for im in images])
    if isinstance(images, (list, tuple)):
        return np.stack([model.to_input(im) for im in images])
    return model.to_input(images)[None]


def explanation_html(ex: Explanation, limit: int = 8) -> str:
    from .viz.figures import fig_to_png
    from .viz.overlay import overlay_row_figure

    parts = []
    for i in range(min(limit, len(ex.images))):
        heats = [(m, ex.maps[m][i], ex.signed.get(m, False)) for m in ex.maps]
        title = f"predicted {ex.predicted[i]}" + (f", explained for {ex.target}" if ex.target else "")
        parts.append(image(fig_to_png(overlay_row_figure(ex.images[i], heats, title), dpi=80), title))
    more = f'<p class="note">first {limit} of {len(ex.images)} images</p>' if len(ex.images) > limit else ""
    return wrap(f"<h3>Explanation: {esc(', '.join(ex.maps))}</h3>", *parts, more)

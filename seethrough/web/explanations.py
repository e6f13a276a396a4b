"""What the page's explanation panel shows, from :mod:`seethrough.explain`.

The maps come from :func:`seethrough.explain.explain`; the scores from
:mod:`seethrough.explain.faithfulness` (deletion and insertion areas beside those of
a random pixel order, and the model-randomization rank correlation). Nothing is
computed here that the library does not compute.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..trained import TrainedModel


def methods_for(model: TrainedModel) -> list[dict]:
    """The methods that apply to ``model``: name, whether the map is signed, the paper."""
    from ..explain import METHODS, applicable_methods

    return [{"name": name, "signed": bool(METHODS[name].signed), "paper": METHODS[name].paper}
            for name in applicable_methods(model)]


def explain(model: TrainedModel, image: np.ndarray, method: str, target: int | None = None, *,
            faithfulness: bool = True, steps: int = 20) -> dict:
    """The ``method`` map (H, W) of a uint8 (H, W, C) image for class ``target`` (the predicted
    one when None), with its faithfulness scores."""
    from ..explain import METHODS, applicable_methods
    from ..explain import explain as explain_map
    from ..explain import faithfulness as faith

    if method not in applicable_methods(model):
        names = ", ".join(applicable_methods(model))
        raise ModelError(f"method {method!r} does not apply to this model; choose one of {names}")
    if target is None:
        target = int(model.predict(image[None])[0])
    heat = explain_map(model, image, method, target=target)  # (H, W)
    out = {"method": method, "target": target, "class": model.class_names[target],
           "signed": bool(METHODS[method].signed), "paper": METHODS[method].paper, "map": heat}
    if faithfulness:
        batch = image[None]
        ordered = faith.curves(model, batch, heat[None], [target], steps)
        shuffled = faith.curves(model, batch, np.random.default_rng(1).random(heat[None].shape), [target], steps)
        out["faithfulness"] = {
            "deletion_auc": ordered.deletion_auc, "insertion_auc": ordered.insertion_auc,
            "random_deletion_auc": shuffled.deletion_auc, "random_insertion_auc": shuffled.insertion_auc,
            "randomization_corr": _finite(faith.randomization_check(model, batch, method)),
            "fractions": ordered.fractions.tolist(),
            "deletion": ordered.deletion[0].tolist(), "insertion": ordered.insertion[0].tolist()}
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None

"""What the page's explanation panel shows, from :mod:`seethrough.explain`.

The map comes from :func:`seethrough.explain.explain`; the scores are the row
:func:`seethrough.explain.faithfulness.score` returns for this one image (ROAD deletion
and insertion areas beside a random order's, their curves, and the cascading
randomization check with its verdict). Nothing is computed here that the library does
not compute.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..trained import TrainedModel

REMOVAL = "road"  # the removal the page's curves use: ROAD, which favours no method's baseline


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
    from ..explain.base import constant_maps

    if method not in applicable_methods(model):
        names = ", ".join(applicable_methods(model))
        raise ModelError(f"method {method!r} does not apply to this model; choose one of {names}")
    if target is None:
        target = int(model.predict(image[None])[0])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant map is flagged in the answer
        heat = explain_map(model, image, method, target=target)  # (H, W)
    out = {"method": method, "target": target, "class": model.class_names[target],
           "signed": bool(METHODS[method].signed), "paper": METHODS[method].paper, "map": heat,
           "constant": bool(constant_maps(heat[None])[0])}
    if faithfulness:
        row = faith.score(model, image[None], method, steps, target=[target], removals=REMOVAL, keep_curves=True)
        v, rz = row["removals"][REMOVAL], row["randomization"]
        out["faithfulness"] = {
            "removal": REMOVAL,
            "deletion_auc": v["deletion"], "insertion_auc": v["insertion"],
            "random_deletion_auc": v["random_deletion"], "random_insertion_auc": v["random_insertion"],
            "randomization_corr": _finite(rz["final_spearman_abs"]), "verdict": rz["verdict"],
            "threshold": rz["threshold"],
            "fractions": v["curves"]["fractions"],
            "deletion": v["curves"]["deletion"][0], "insertion": v["curves"]["insertion"][0]}
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None

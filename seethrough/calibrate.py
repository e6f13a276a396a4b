"""How sure a model really is: temperature scaling and the expected calibration error.

A network's softmax is often more confident than it is right. Temperature scaling (Guo et al.,
"On Calibration of Modern Neural Networks", ICML 2017) divides the logits by one number
``T > 0`` fitted on held-out (validation) images to minimise their negative log-likelihood;
``T > 1`` softens over-confident probabilities. The predicted class never changes.

The expected calibration error (ECE) puts each image's top probability ("confidence") into one
of ``n_bins`` equal-width bins on (0, 1] and averages, weighted by the bin's share of images,
``|accuracy - mean confidence|`` in each bin: 0 when "90 % sure" is right 90 % of the time.

    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2]]); labels = np.array([0, 1])
    >>> round(expected_calibration_error(proba, labels), 3)   # 0.9 sure and right, 0.8 sure and wrong
    0.45

Everything here is NumPy and SciPy on arrays; drawing the reliability diagram is
:func:`seethrough.viz.reliability_figure`'s job.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from .errors import SeethroughError

N_BINS = 15  # Guo et al.'s choice


def scaled_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / T)`` row by row, float64 (N, K)."""
    return softmax(np.asarray(logits, np.float64) / temperature, axis=1)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / T)``."""
    logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)  # (N, K)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds=(0.01, 100.0)) -> float:
    """The temperature that minimises the NLL of ``labels`` given ``logits`` (N, K).

    The NLL is convex in ``1 / T``, so a bounded 1-D search on ``log T`` finds its minimum.
    """
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise SeethroughError(f"temperature fitting needs (N, K) logits and N labels, got {logits.shape} "
                              f"and {labels.shape}")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda t: nll(logits, labels, np.exp(t)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-5})
    return float(np.exp(res.x))


def reliability(proba: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Per-bin counts, mean confidence and accuracy of the top class (the reliability diagram's data).

    Bin ``b`` holds confidences in ``(b / n_bins, (b + 1) / n_bins]``. Empty bins have NaN
    confidence and accuracy. Returns arrays ``edges`` (n_bins + 1,), ``count``, ``confidence``,
    ``accuracy`` (n_bins,) and the ``ece``.
    """
    proba, labels = np.asarray(proba, np.float64), np.asarray(labels)
    conf = proba.max(1)                                          # (N,)
    right = (proba.argmax(1) == labels).astype(np.float64)       # (N,)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # (N,): bin of each image
    count = np.bincount(which, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, conf, n_bins) / count
        accuracy = np.bincount(which, right, n_bins) / count
    gaps = np.where(count > 0, np.abs(accuracy - confidence), 0.0)
    ece = float((count * gaps).sum() / max(1, len(labels)))
    return {"edges": edges, "count": count, "confidence": confidence, "accuracy": accuracy, "ece": ece}


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of the top-class probability in ``n_bins`` equal-width bins (see the module docstring)."""
    return reliability(proba, labels, n_bins)["ece"]


def validation_split(data, val_fraction: float, seed: int = 0):
    """The validation part of ``data`` that training held out (the same stratified split as
    :func:`seethrough.train.fit` draws), or None when it held none out."""
    from .data.dataset import split_indices

    if not val_fraction > 0 or len(data) < 10:
        return None
    return data.subset(split_indices(data.labels, val_fraction, seed)[1], name=f"{data.name} (validation)")


def calibrate_model(model, val) -> dict:
    """Fit ``model``'s temperature and its unfamiliar-image threshold on validation images ``val``.

    Stores ``meta["calibration"]`` (the temperature with the validation ECE and NLL before and
    after) and ``meta["unfamiliar"]`` (:func:`seethrough.unfamiliar.fit_threshold`), which
    model.json keeps; returns the calibration facts.
    """
    from .unfamiliar import fit_threshold

    z = model.logits(val.images)                                 # (N, K)
    # with no validation errors the NLL falls all the way to T -> 0 (ever sharper): nothing to fit, keep 1
    degenerate = bool((z.argmax(1) == val.labels).all())
    t = 1.0 if degenerate else fit_temperature(z, val.labels)
    facts = {"temperature": t, "split": "validation", "n": int(len(val)), "n_bins": N_BINS,
             "ece_before": expected_calibration_error(scaled_softmax(z), val.labels),
             "ece_after": expected_calibration_error(scaled_softmax(z, t), val.labels),
             "nll_before": nll(z, val.labels), "nll_after": nll(z, val.labels, t),
             "fitted": not degenerate}
    model.meta["calibration"] = facts
    model.meta["unfamiliar"] = fit_threshold(z, t)
    return facts

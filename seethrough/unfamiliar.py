"""Marking images unlike the training data, with a score computed from the model itself.

The score is the **energy** of the logits (Liu et al., "Energy-based Out-of-distribution
Detection", NeurIPS 2020)::

    energy(x) = -T * log(sum_k exp(z_k(x) / T))

with ``z`` the model's logits and ``T`` its fitted temperature. An image the network has
strong evidence for (one large logit) has a low energy; one that excites no class much has
a high energy. Unlike the top softmax probability, the energy keeps the logits' overall size,
which softmax throws away.

The threshold is the 95th percentile of the validation images' energies, so by construction
about 5 % of images like the validation split are marked (the false-alarm rate); how many
truly unfamiliar images are caught depends on the data and is measured in docs/benchmarks.md.

    >>> import numpy as np
    >>> float(np.round(energy(np.array([[0.0, 0.0]])), 4)[0])   # -log 2
    -0.6931
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .errors import SeethroughError

FALSE_ALARM_RATE = 0.05  # the share of validation images the threshold marks


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``-T * logsumexp(logits / T)`` per row: (N, K) -> (N,); higher is less familiar."""
    z = np.asarray(logits, np.float64)
    return -temperature * logsumexp(z / temperature, axis=1)


def fit_threshold(val_logits: np.ndarray, temperature: float = 1.0, rate: float = FALSE_ALARM_RATE) -> dict:
    """The energy above which an image is marked: the ``1 - rate`` quantile on validation logits.

    Returns the facts stored in model.json under ``"unfamiliar"``.
    """
    if not 0 < rate < 1:
        raise SeethroughError(f"the false-alarm rate must be between 0 and 1, got {rate}")
    scores = energy(val_logits, temperature)
    if len(scores) == 0:
        raise SeethroughError("setting the unfamiliar-image threshold needs validation images; got none")
    return {"score": "energy", "temperature": float(temperature), "threshold": float(np.quantile(scores, 1 - rate)),
            "false_alarm_rate": rate, "n_validation": int(len(scores))}


def is_unfamiliar(logits: np.ndarray, facts: dict | None) -> np.ndarray | None:
    """Boolean (N,): which images score above the stored threshold; None when the model has none."""
    if not facts:
        return None
    return energy(logits, facts.get("temperature", 1.0)) > facts["threshold"]


def auroc(familiar_scores: np.ndarray, unfamiliar_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling unfamiliar (higher score) from familiar images."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(familiar_scores)), np.ones(len(unfamiliar_scores))]
    return float(roc_auc_score(y, np.r_[familiar_scores, unfamiliar_scores]))

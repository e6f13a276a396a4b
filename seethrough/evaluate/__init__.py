"""How well a model does: accuracy, per-class precision and recall, the confusion
matrix, and the most confidently wrong examples (scikit-learn's metrics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from ..calibrate import expected_calibration_error, scaled_softmax
from ..data.dataset import ImageDataset
from ..trained import TrainedModel
from ..unfamiliar import is_unfamiliar


@dataclass
class Evaluation:
    """The result of :func:`evaluate`. Arrays are indexed like the data set."""

    accuracy: float
    class_names: list[str]
    precision: np.ndarray   # (K,)
    recall: np.ndarray      # (K,)
    f1: np.ndarray          # (K,)
    support: np.ndarray     # (K,)
    confusion: np.ndarray   # (K, K): rows are true classes, columns predictions
    y_true: np.ndarray      # (N,)
    y_pred: np.ndarray      # (N,)
    proba: np.ndarray       # (N, K), calibrated when the model has a temperature
    temperature: float = 1.0
    ece: float | None = None              # expected calibration error (15 bins) of ``proba``
    ece_uncalibrated: float | None = None  # ... of the raw softmax (temperature 1)
    unfamiliar: np.ndarray | None = None  # (N,) bool: marked unlike the training data; None without a threshold
    proba_uncalibrated: np.ndarray | None = None  # (N, K): the raw softmax

    @property
    def wrong(self) -> np.ndarray:
        """Indices of misclassified examples, most confidently wrong first."""
        idx = np.flatnonzero(self.y_true != self.y_pred)
        conf = self.proba[idx, self.y_pred[idx]]
        return idx[np.argsort(-conf, kind="stable")]

    def per_class(self) -> list[dict]:
        return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for c, p, r, f, s in zip(self.class_names, self.precision, self.recall, self.f1, self.support)]

    def to_json(self) -> dict:
        out = {"accuracy": self.accuracy, "per_class": self.per_class(),
               "confusion_matrix": self.confusion.tolist(), "class_names": self.class_names,
               "n": int(len(self.y_true))}
        if self.ece is not None:
            out.update(temperature=self.temperature, ece=self.ece, ece_uncalibrated=self.ece_uncalibrated)
        if self.unfamiliar is not None:
            out["unfamiliar"] = {"n": int(self.unfamiliar.sum()), "rate": float(self.unfamiliar.mean())}
        return out

    def _repr_html_(self) -> str:  # accuracy, per-class table, confusion matrix in a notebook
        return evaluation_html(self)


def evaluate_predictions(y_true, proba, class_names) -> Evaluation:
    y_true = np.asarray(y_true)
    y_pred = proba.argmax(1)
    labels = np.arange(len(class_names))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return Evaluation(float(accuracy_score(y_true, y_pred)), list(class_names), p, r, f, s,
                      confusion_matrix(y_true, y_pred, labels=labels), y_true, y_pred, proba)


def evaluate(model: TrainedModel, data: ImageDataset) -> Evaluation:
    """Evaluate ``model`` on every image of ``data``: with its calibrated probabilities, the ECE
    before and after temperature scaling, and which images it marks as unfamiliar."""
    z = model.logits(data.images)                                   # (N, K)
    t = model.temperature
    ev = evaluate_predictions(data.labels, scaled_softmax(z, t), model.class_names)
    ev.temperature = t
    ev.ece = expected_calibration_error(ev.proba, ev.y_true)
    ev.proba_uncalibrated = scaled_softmax(z)
    ev.ece_uncalibrated = expected_calibration_error(ev.proba_uncalibrated, ev.y_true)
    ev.unfamiliar = is_unfamiliar(z, model.meta.get("unfamiliar"))
    return ev


# ---------------------------------------------------------------------- in a notebook
def confusion_png(cm: np.ndarray, class_names: list[str]) -> bytes:
    from ..viz.figures import confusion_figure, fig_to_png

    return fig_to_png(confusion_figure(cm, class_names), dpi=80)


def evaluation_html(ev) -> str:
    """An Evaluation as its accuracy, per-class precision/recall/F1 and the confusion matrix."""
    from ..htmlparts import image, table, wrap

    rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
            for r in ev.per_class()]
    head = (f"<h3>Evaluation: accuracy {ev.accuracy:.2%}</h3><p class=\"note\">{len(ev.y_true):,} images, "
            f"{int((ev.y_true != ev.y_pred).sum()):,} wrong</p>")
    table = table(["class", "precision", "recall", "F1", "images"], rows)
    return wrap(head, f'<div class="row"><div>{table}</div><div>'
                       f'{image(confusion_png(ev.confusion, ev.class_names), "confusion matrix")}</div></div>')


__all__ = ["Evaluation", "evaluate", "evaluate_predictions"]

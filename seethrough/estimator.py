"""ImageClassifier: a scikit-learn estimator that trains any registered model.

It follows scikit-learn's contract: ``__init__`` only stores its keyword-only
parameters, ``fit`` returns ``self``, learned attributes end in ``_``; so it works
with ``clone``, ``Pipeline`` and ``GridSearchCV``. Its training parameters are
:class:`~seethrough.config.TrainConfig`'s fields (made from them, with their help text),
and ``fit`` trains through :func:`seethrough.pipeline.train_run`.
"""

from __future__ import annotations

import inspect
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .config import TrainConfig, help_text
from .data.dataset import ImageDataset
from .errors import DataError
from .pipeline import RunOptions, train_run
from .run import RunFolder
from .trained import TrainedModel

# The parameters: the model, every TrainConfig field (two with other defaults: no validation split, the CPU),
# then how to read X, the progress bar and where to write the run folder.
_OWN_BEFORE = {"model": ("mlp", "A registered model name (see ``seethrough.list_models()``) or a JSON spec file.")}
_CHANGED = {"val_fraction": 0.0, "device": "cpu"}
_OWN_AFTER = {
    "image_shape": (None, "How to read rows of a 2-D ``X`` as images (H, W, C); None reads them as (1, 1, D), "
                          "which suits ``logreg`` and ``mlp``."),
    "verbose": (False, "Show one line per epoch and a progress bar while fitting."),
    "run_dir": (None, "A run folder that ``fit`` writes as ``seethrough train`` does (weights, metrics.jsonl, "
                      "checkpoint/ after every epoch); None keeps everything in memory."),
    "init_from": (None, "Start from this run folder's layers, or the bundled network ``\"cifar10\"``, with a new "
                        "last layer (``seethrough.transfer``); ``model`` is then not used."),
    "freeze": (False, "With ``init_from``: train only the new last layer."),
}
PARAMS = {**{k: v[0] for k, v in _OWN_BEFORE.items()},
          **{f.name: _CHANGED.get(f.name, f.default) for f in fields(TrainConfig)},
          **{k: v[0] for k, v in _OWN_AFTER.items()}}


def _params_doc() -> str:
    lines = []
    for name, default in PARAMS.items():
        if name in _OWN_BEFORE or name in _OWN_AFTER:
            text = {**_OWN_BEFORE, **_OWN_AFTER}[name][1]
            kind = "str" if name == "model" else "tuple or None" if name == "image_shape" else \
                "bool" if name in ("verbose", "freeze") else "path or None"
        else:
            text, kind = help_text(name), str(TrainConfig.__dataclass_fields__[name].type).replace(" | None", " or None")
        lines += [f"    {name} : {kind}, default={default!r}", f"        {text}"]
    return "\n".join(lines)


class ImageClassifier(ClassifierMixin, BaseEstimator):
    __doc__ = f"""Train an image classifier, from logistic regression to a CNN, the scikit-learn way.

    Parameters
    ----------
{_params_doc()}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    model_ : TrainedModel
        The trained network with its preprocessing; usable with ``seethrough.explain``.
    history_ : list of dict
        Per-epoch metrics.

    Examples
    --------
    >>> import seethrough as st
    >>> data = st.load_dataset("digits")
    >>> clf = st.ImageClassifier(model="logreg", epochs=20, lr=0.01).fit(data.images, data.labels)
    >>> test = st.load_dataset("digits", split="test")
    >>> clf.score(test.images, test.labels) > 0.9
    True
    """

    def __init__(self, **params):
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise TypeError(f"ImageClassifier got unexpected parameters {unknown}; expected {sorted(PARAMS)}")
        for name, default in PARAMS.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in PARAMS.items()])

    # ------------------------------------------------------------------ input handling
    def _images(self, X, reset: bool) -> np.ndarray:
        """X of shape (N, H, W), (N, H, W, C) or (N, D) -> uint8 (N, H, W, C) pixels.

        Non-uint8 input is mapped to 0..255 by the range seen in ``fit``, so any
        numeric features work; uint8 images are used as they are.
        """
        X = np.asarray(X) if not hasattr(X, "dtype") or X.dtype == object else X
        if getattr(X, "ndim", 2) in (3, 4) and np.asarray(X).dtype == np.uint8:
            X = np.asarray(X)
            flat = X.reshape(len(X), -1)
            validate_data(self, flat, reset=reset, dtype=None)
            return X[..., None] if X.ndim == 3 else X
        if getattr(X, "ndim", 2) in (3, 4):
            X = np.asarray(X)
            shape = X.shape[1:] + ((1,) if X.ndim == 3 else ())
            flat = validate_data(self, X.reshape(len(X), -1), reset=reset, dtype=np.float64)
        else:
            flat = validate_data(self, X, reset=reset, dtype=np.float64)
            shape = tuple(self.image_shape) if self.image_shape is not None else (1, 1, flat.shape[1])
            if int(np.prod(shape)) != flat.shape[1]:
                raise DataError(f"image_shape={tuple(shape)} holds {int(np.prod(shape))} values "
                                f"but X has {flat.shape[1]} features")
        if reset:
            self._lo, self._hi = float(flat.min()), float(flat.max())
        span = (self._hi - self._lo) or 1.0
        pixels = np.clip(np.round((flat - self._lo) / span * 255.0), 0, 255).astype(np.uint8)
        return pixels.reshape((len(flat),) + tuple(shape))

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y):
        """Train on images ``X`` with labels ``y`` (any hashable labels); returns self."""
        images = self._images(X, reset=True)
        check_classification_targets(y)
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        labels = self._encoder.transform(y)
        data = ImageDataset(images, labels, [str(c) for c in self.classes_], "estimator")
        config = TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})
        if isinstance(config.class_weight, dict):  # keyed by y's labels: by their index among classes_
            config.class_weight = {self._class_index(k): w for k, w in config.class_weight.items()}
        result = train_run({"train": data}, self.model, config,
                           RunOptions(run_dir=self.run_dir, progress=self.verbose, init_from=self.init_from,
                                      freeze=self.freeze, log=print if self.verbose else (lambda text: None)))
        self.model_, self.history_ = result.model, result.history
        return self

    def _class_index(self, label) -> int:
        where = np.flatnonzero(self.classes_ == label)
        if len(where) != 1:
            raise DataError(f"class_weight names {label!r}, which is not a label in y; expected one of: "
                            f"{', '.join(map(str, self.classes_))}")
        return int(where[0])

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        images = self._images(X, reset=False)
        if images.shape[1:] != self.model_.input_shape:  # started from another network: its input rule
            from .transfer import match_input

            images = match_input(ImageDataset(images, np.zeros(len(images), np.int64), ["?"]),
                                 self.model_.input_shape).images
        return self.model_.predict_proba(images)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks fitted before classes_ is read
        return self.classes_[proba.argmax(1)]

    def save(self, run_dir, test=None):
        """Write the trained model as a run folder the CLI reads; returns its path.

        ``test`` (an ImageDataset, or ``(X, y)``) also writes its evaluation.json and confusion.png,
        as ``seethrough train`` does. A model fitted with ``run_dir`` brings its checkpoint along.
        """
        check_is_fitted(self, "model_")
        folder = RunFolder(run_dir)
        if self.run_dir is not None and Path(self.run_dir).resolve() != folder.path.resolve():
            shutil.copytree(self.run_dir, folder.path, dirs_exist_ok=True)
        self.model_.save(folder.path)
        folder.write_metrics(self.history_)
        if test is not None:
            from .evaluate import evaluate

            if not isinstance(test, ImageDataset):
                X, y = test
                test = ImageDataset(self._images(X, reset=False), self._encoder.transform(y),
                                    self.model_.class_names, "test")
            folder.write_evaluation(evaluate(self.model_, test))
        return folder.path

    @classmethod
    def from_run(cls, run_dir, **params) -> "ImageClassifier":
        """An ImageClassifier around a run folder's trained model (class labels are its class names)."""
        clf = cls(**params)
        clf.model_ = TrainedModel.load(run_dir, device=clf.device)
        clf.classes_ = np.array(clf.model_.class_names)
        h, w, c = clf.model_.input_shape
        clf.n_features_in_ = h * w * c
        clf._lo, clf._hi = 0.0, 255.0
        clf.history_ = []
        return clf

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.device != "cpu"
        return tags

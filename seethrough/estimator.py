"""ImageClassifier: a scikit-learn estimator that trains any registered model.

It follows scikit-learn's contract: ``__init__`` only stores its keyword-only
parameters, ``fit`` returns ``self``, learned attributes end in ``_``; so it works
with ``clone``, ``Pipeline`` and ``GridSearchCV``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .data.dataset import ImageDataset
from .errors import DataError
from .train import TrainConfig, fit, new_model
from .trained import TrainedModel


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """Train an image classifier, from logistic regression to a CNN, the scikit-learn way.

    Parameters
    ----------
    model : str, default="mlp"
        A registered model name (see ``seethrough.list_models()``) or a JSON spec file.
    epochs : int, default=10
    batch_size : int, default=64
    lr : float, default=1e-3
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    weight_decay : float, default=0.0
    schedule : {"none", "cosine", "step", "onecycle"}, default="none"
    augment : {"none", "shift", "flip", "shift+flip", "shift+flip+cutout"}, default="none"
    val_fraction : float, default=0.0
        Part of the training data held out for early stopping (with ``patience``).
    patience : int or None, default=None
    image_shape : tuple (H, W, C) or None, default=None
        How to read rows of a 2-D ``X`` as images; None reads them as (1, 1, D),
        which suits ``logreg`` and ``mlp``.
    seed : int, default=0
    device : {"auto", "cpu", "cuda"}, default="cpu"
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        "bf16" trains with bfloat16 mixed precision; "auto" uses it where the hardware does it natively.
    verbose : bool, default=False
        Show a progress bar while fitting.
    init_from : str or None, default=None
        Start from this run folder's layers, or the bundled network ``"cifar10"``, with a new last
        layer (:func:`seethrough.transfer.transfer`); ``model`` is then not used.
    freeze : bool, default=False
        With ``init_from``: train only the new last layer.
    body_lr_scale : float or None, default=None
        With ``init_from``: the copied layers' learning rate x this (None: 0.1, or 1 when frozen).

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

    def __init__(self, *, model="mlp", epochs=10, batch_size=64, lr=1e-3, optimizer="adam",
                 weight_decay=0.0, schedule="none", augment="none", val_fraction=0.0, patience=None,
                 image_shape=None, seed=0, device="cpu", precision="fp32", verbose=False, init_from=None,
                 freeze=False, body_lr_scale=None):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.augment = augment
        self.val_fraction = val_fraction
        self.patience = patience
        self.image_shape = image_shape
        self.seed = seed
        self.device = device
        self.precision = precision
        self.verbose = verbose
        self.init_from = init_from
        self.freeze = freeze
        self.body_lr_scale = body_lr_scale

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
        body_lr_scale = self.body_lr_scale
        if self.init_from is not None:
            from .transfer import BODY_LR_SCALE, match_input, transfer

            self.model_ = transfer(self.init_from, data, freeze=self.freeze, seed=self.seed)
            data = match_input(data, self.model_.input_shape)
            if body_lr_scale is None and not self.freeze:
                body_lr_scale = BODY_LR_SCALE
        else:
            self.model_ = new_model(self.model, data, seed=self.seed)
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             optimizer=self.optimizer, weight_decay=self.weight_decay,
                             schedule=self.schedule, augment=self.augment,
                             val_fraction=self.val_fraction, patience=self.patience,
                             seed=self.seed, device=self.device, precision=self.precision,
                             body_lr_scale=body_lr_scale)
        self.history_ = fit(self.model_, data, config, progress=self.verbose)
        from .calibrate import calibrate_model, validation_split

        val = validation_split(data, config.val_fraction, config.seed)
        if val is not None:  # the temperature predict_proba uses, and the unfamiliar-image threshold
            calibrate_model(self.model_, val)
        return self

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

    def save(self, run_dir):
        """Write the trained model as a run folder the CLI reads."""
        check_is_fitted(self, "model_")
        return self.model_.save(run_dir)

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

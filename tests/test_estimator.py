"""ImageClassifier is a real scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import seethrough as st
from seethrough import ImageClassifier
from seethrough.errors import DataError


@parametrize_with_checks([ImageClassifier(epochs=5)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_returns_self_and_learned_attributes(tiny_images):
    clf = ImageClassifier(model="tinyvgg", epochs=6, lr=3e-3)
    assert clf.fit(tiny_images.images, tiny_images.labels) is clf
    assert list(clf.classes_) == [0, 1, 2] and clf.n_features_in_ == 12 * 12 * 3
    assert clf.score(tiny_images.images, tiny_images.labels) > 0.9
    assert clf.predict_proba(tiny_images.images[:4]).shape == (4, 3)


def test_string_labels_and_clone(tiny_images):
    names = np.array(tiny_images.class_names)[tiny_images.labels]
    clf = ImageClassifier(model="logreg", epochs=3).fit(tiny_images.images, names)
    assert set(clf.predict(tiny_images.images)) <= set(names)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and not hasattr(copy, "model_")


def test_class_weight_dict_is_keyed_by_ys_labels(tiny_images):
    names = np.array(tiny_images.class_names)[tiny_images.labels]    # "top", "middle", "bottom"
    clf = ImageClassifier(model="logreg", epochs=3, class_weight={"bottom": 100.0, "top": 0.01, "middle": 0.01})
    clf.fit(tiny_images.images, names)
    assert clf.model_.meta["train"]["class_weight"] == {0: 100.0, 2: 0.01, 1: 0.01}  # by index of classes_
    plain = ImageClassifier(model="logreg", epochs=3).fit(tiny_images.images, names)
    bottom = list(clf.classes_).index("bottom")
    assert clf.predict_proba(tiny_images.images)[:, bottom].mean() > plain.predict_proba(tiny_images.images)[:, bottom].mean() + 0.03
    with pytest.raises(DataError, match="'left', which is not a label in y"):
        ImageClassifier(model="logreg", epochs=1, class_weight={"left": 2.0}).fit(tiny_images.images, names)


def test_logreg_agrees_with_scikit_learn_on_digits():
    train, test = st.load_dataset("digits"), st.load_dataset("digits", "test")
    ours = ImageClassifier(model="logreg", epochs=30, lr=0.01, schedule="cosine").fit(train.images, train.labels)
    flat = lambda d: d.images.reshape(len(d), -1) / 255.0
    theirs = LogisticRegression(max_iter=2000).fit(flat(train), train.labels)
    a, b = ours.score(test.images, test.labels), theirs.score(flat(test), test.labels)
    assert a > 0.93 and abs(a - b) < 0.03
    agree = (ours.predict(test.images) == theirs.predict(flat(test))).mean()
    assert agree > 0.93


def test_pipeline_and_grid_search(tiny_images):
    to_float = FunctionTransformer(lambda x: x.astype(np.float32) / 255.0)
    pipe = Pipeline([("scale", to_float), ("clf", ImageClassifier(model="logreg", epochs=3, image_shape=(12, 12, 3)))])
    flat = tiny_images.images.reshape(len(tiny_images), -1)
    search = GridSearchCV(pipe, {"clf__lr": [1e-3, 1e-2]}, cv=2).fit(flat, tiny_images.labels)
    assert search.best_params_["clf__lr"] in (1e-3, 1e-2)
    assert search.score(flat, tiny_images.labels) > 0.8


def test_save_and_reload_as_a_run(tiny_images, tmp_path):
    clf = ImageClassifier(model="logreg", epochs=2).fit(tiny_images.images, tiny_images.labels)
    clf.save(tmp_path / "run")
    again = ImageClassifier.from_run(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(tiny_images.images), clf.predict_proba(tiny_images.images),
                               atol=1e-6)


def test_image_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="image_shape=\\(2, 2, 1\\) holds 4 values but X has 5 features"):
        ImageClassifier(image_shape=(2, 2, 1)).fit(np.zeros((4, 5)), [0, 1, 0, 1])

"""Temperature scaling, the expected calibration error and the unfamiliar-image score, against
hand-computed cases and synthetic data whose true temperature is known."""

from __future__ import annotations

import numpy as np
import pytest

from seethrough.calibrate import (calibrate_model, expected_calibration_error, fit_temperature, nll,
                                  reliability, scaled_softmax, validation_split)
from seethrough.errors import SeethroughError
from seethrough.unfamiliar import auroc, energy, fit_threshold, is_unfamiliar


def test_ece_hand_computed():
    # confidences 0.95 (right), 0.95 (wrong), 0.55 (right), 0.30 of 4 classes (wrong):
    # bin (14/15, 1]: accuracy 1/2, confidence 0.95 -> gap 0.45, weight 2/4
    # bin (8/15, 9/15]: accuracy 1, confidence 0.55 -> gap 0.45, weight 1/4
    # bin (4/15, 5/15]: accuracy 0, confidence 0.30 -> gap 0.30, weight 1/4
    proba = np.array([[0.95, 0.05, 0, 0], [0.95, 0.05, 0, 0], [0.55, 0.45, 0, 0], [0.3, 0.25, 0.25, 0.2]])
    labels = np.array([0, 1, 0, 3])
    expected = 0.5 * 0.45 + 0.25 * 0.45 + 0.25 * 0.30
    assert expected_calibration_error(proba, labels) == pytest.approx(expected)
    r = reliability(proba, labels)
    assert r["count"].sum() == 4 and r["count"][14] == 2 and r["count"][8] == 1 and r["count"][4] == 1
    assert r["accuracy"][14] == 0.5 and np.isnan(r["accuracy"][0])


def test_ece_is_zero_when_confidence_matches_accuracy():
    # 10 images at confidence 0.7 of which 7 are right
    proba = np.tile([0.7, 0.3], (10, 1))
    labels = np.array([0] * 7 + [1] * 3)
    assert expected_calibration_error(proba, labels) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 5))
    p = scaled_softmax(logits, true_t)                       # labels drawn from softmax(z / T)
    labels = (p.cumsum(1) > rng.random((len(p), 1))).argmax(1)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.05)
    assert nll(logits, labels, t) <= nll(logits, labels, true_t) + 1e-9  # the minimum, on these labels


def test_fit_temperature_refuses_mismatched_shapes():
    with pytest.raises(SeethroughError, match="logits"):
        fit_temperature(np.zeros((3, 2)), np.zeros(4, int))


def test_energy_and_threshold():
    assert energy(np.array([[0.0, 0.0]]))[0] == pytest.approx(-np.log(2))
    rng = np.random.default_rng(1)
    val = rng.normal(0, 1, size=(2000, 3)) + np.array([6.0, 0, 0])  # confident validation logits
    facts = fit_threshold(val, temperature=1.0)
    assert facts["score"] == "energy" and facts["false_alarm_rate"] == 0.05
    assert is_unfamiliar(val, facts).mean() == pytest.approx(0.05, abs=0.002)
    flat = rng.normal(0, 1, size=(500, 3))                         # no class stands out: marked
    assert is_unfamiliar(flat, facts).mean() > 0.9
    assert auroc(energy(val), energy(flat)) > 0.95
    assert is_unfamiliar(val, None) is None


def test_calibrate_model_stores_temperature_and_threshold(tiny_images):
    from seethrough.evaluate import evaluate
    from seethrough.train import TrainConfig, fit, new_model

    model = new_model("smallcnn", tiny_images, seed=0)
    cfg = TrainConfig(epochs=2, val_fraction=0.2, device="cpu")
    fit(model, tiny_images, cfg)
    val = validation_split(tiny_images, cfg.val_fraction, cfg.seed)
    assert len(val) == 18
    facts = calibrate_model(model, val)
    assert model.temperature == facts["temperature"] > 0
    assert model.meta["unfamiliar"]["threshold"] == pytest.approx(
        np.quantile(energy(model.logits(val.images), facts["temperature"]), 0.95))
    raw = model.predict_proba(tiny_images.images, calibrated=False)
    cal = model.predict_proba(tiny_images.images)
    np.testing.assert_array_equal(raw.argmax(1), cal.argmax(1))       # the temperature never changes the class
    np.testing.assert_allclose(cal, scaled_softmax(model.logits(tiny_images.images), model.temperature), atol=1e-5)
    ev = evaluate(model, tiny_images)
    assert ev.ece == pytest.approx(expected_calibration_error(cal, tiny_images.labels), abs=1e-6)
    assert ev.ece_uncalibrated == pytest.approx(expected_calibration_error(raw, tiny_images.labels), abs=1e-6)
    js = ev.to_json()
    assert js["temperature"] == model.temperature and "unfamiliar" in js


def test_no_validation_errors_keeps_temperature_one():
    class Perfect:  # logits that classify every validation image right
        meta: dict = {}

        def logits(self, images):
            return np.eye(3)[np.arange(len(images)) % 3] * 5.0

    from seethrough.data import ImageDataset

    val = ImageDataset(np.zeros((9, 2, 2, 1), np.uint8), np.arange(9) % 3, ["a", "b", "c"])
    model = Perfect()
    model.meta = {}
    facts = calibrate_model(model, val)
    assert facts["temperature"] == 1.0 and facts["fitted"] is False

"""The network bundled with the package (``--from cifar10``): its file is the one recorded, it
loads, and it still gives its recorded predictions on CIFAR-10 test images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seethrough.transfer import BUNDLED, BUNDLED_SHA256, load_source, weights_sha256

FOLDER = BUNDLED["cifar10"]


def test_bundled_file_is_the_recorded_one_and_small():
    data = (FOLDER / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == BUNDLED_SHA256["cifar10"] == weights_sha256("cifar10")
    assert len(data) <= 10 * 2 ** 20


def test_bundled_loads_and_takes_any_input_size():
    model = load_source("cifar10")
    assert model.meta["model"] == "fastcifar-gap" and len(model.class_names) == 10
    assert [l.kind for l in model.spec][-2:] == ["gap", "linear"]
    images = np.random.default_rng(0).integers(0, 255, (2, 64, 48, 3), dtype=np.uint8)
    from seethrough.transfer import transfer
    from seethrough.data import ImageDataset

    new = transfer("cifar10", ImageDataset(images, [0, 1], ["x", "y"]))
    assert new.input_shape == (64, 48, 3) and new.predict_proba(images).shape == (2, 2)


def test_bundled_gives_its_recorded_predictions(shared_data_dir):
    from seethrough.data import load_splits

    info = json.loads((FOLDER / "model.json").read_text())["bundled"]
    want = np.array(info["check_predictions"])
    test = load_splits("cifar10", data_dir=shared_data_dir)["test"]
    model = load_source("cifar10")
    got = model.predict(test.images[:len(want)])
    assert (got != want).sum() <= 1                 # float rounding may flip a near-tie on another CPU
    accuracy = (got == test.labels[:len(want)]).mean()
    assert accuracy == pytest.approx((want == test.labels[:len(want)]).mean(), abs=0.01)

"""Specs and the model registry."""

from __future__ import annotations

import json

import pytest
import torch

from seethrough.errors import ModelError
from seethrough.models import (build_torch, count_params, create_spec, describe, list_models, make_spec)


def test_seed_cnn_has_the_keras_tutorial_parameter_count():
    spec = create_spec("seed-cnn", (3, 32, 32), 10)
    assert count_params(spec, (3, 32, 32)) == 122_570
    net = build_torch(spec, (3, 32, 32))
    assert sum(p.numel() for p in net.parameters()) == 122_570


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_shape", [(3, 32, 32), (1, 28, 28)])
def test_every_model_builds_and_counts_match_torch(name, in_shape):
    spec = create_spec(name, in_shape, 7)
    net = build_torch(spec, in_shape).eval()
    out = net(torch.zeros(2, *in_shape))
    assert out.shape == (2, 7)
    assert count_params(spec, in_shape) == sum(p.numel() for p in net.parameters())
    rows = describe(spec, in_shape)
    assert rows[-1]["output_shape"] == [7]
    assert [r["name"] for r in rows] == [n for n, _ in net.named_children()]


def test_layer_names_are_stable_state_dict_prefixes():
    spec = create_spec("lenet5", (1, 28, 28), 10)
    keys = build_torch(spec, (1, 28, 28)).state_dict().keys()
    assert {"conv1.weight", "conv2.bias", "linear3.weight"} <= set(keys)


def test_spec_from_text_dicts_and_json_file(tmp_path):
    text = ["conv(out=4, k=3, pad=1)", "relu", "maxpool", "flatten", "linear(out=3)"]
    a = make_spec(text)
    b = make_spec([l.to_dict() for l in a])
    assert a == b
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"layers": text}))
    c = create_spec(str(path), (1, 8, 8), 3)
    assert [str(l) for l in c] == ["conv(out=4, pad=1)", "relu", "maxpool", "flatten", "linear(out=3)"]
    assert count_params(c, (1, 8, 8)) == 4 * 9 + 4 + 4 * 4 * 4 * 3 + 3


@pytest.mark.parametrize("model, message", [
    ("resnet999", "unknown model 'resnet999'.*logreg.*seed-cnn"),
    (["conv(out=4)", "wiggle"], "unknown layer type 'wiggle'"),
    (["conv(k=3)"], "'out' is required"),
    (["conv(out=4, size=3)"], "unknown parameter 'size'"),
    (["flatten", "conv(out=2)"], "needs an image input"),
    (["linear(out=3)"], "add 'flatten'"),
])
def test_bad_specs_say_what_was_expected(model, message):
    with pytest.raises(ModelError, match=message):
        create_spec(model, (1, 8, 8), 3)


def test_too_small_input_names_the_layer():
    with pytest.raises(ModelError, match="seed-cnn does not fit 8x8x1.*conv3|seed-cnn does not fit 8x8x1.*maxpool"):
        create_spec("seed-cnn", (1, 8, 8), 10)


def test_bad_json_spec_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        create_spec(str(path), (1, 8, 8), 3)

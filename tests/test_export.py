"""ONNX export: ONNX Runtime's logits equal PyTorch's, preprocessing included."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from seethrough.cli import cli, main  # noqa: E402
from seethrough.errors import RunError, SeethroughError  # noqa: E402
from seethrough.export import export_onnx, export_run, onnx_logits, onnx_session  # noqa: E402
from seethrough.models.surgery import whiten_first_conv  # noqa: E402
from seethrough.train import TrainConfig, fit, new_model  # noqa: E402


@pytest.mark.parametrize("name", ["seed-cnn", "fastcifar-s", "lenet5"])
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    from seethrough.data import ImageDataset

    rng = np.random.default_rng(0)
    data = ImageDataset(rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 4, list("abcd"))
    model = new_model(name, data, seed=1)
    if name == "fastcifar-s":
        whiten_first_conv(model, data.images)
    fit(model, data, TrainConfig(epochs=1, batch_size=16, device="cpu", val_fraction=0))  # batchnorm stats move
    path = export_onnx(model, tmp_path / "m.onnx")
    sess = onnx_session(path, threads=1)
    for n in (1, 7):  # any batch size
        x = data.images[:n]
        np.testing.assert_allclose(onnx_logits(sess, x), model.logits(x), rtol=1e-4, atol=1e-4)
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == list("abcd")


def test_cli_export_of_a_run(tiny_images, tmp_path):
    model = new_model("tinyvgg", tiny_images)
    model.save(tmp_path / "run")
    res = CliRunner().invoke(cli, ["export", str(tmp_path / "run"), "--format", "onnx"])
    assert res.exit_code == 0, res.output
    sess = onnx_session(tmp_path / "run" / "model.onnx")
    np.testing.assert_allclose(onnx_logits(sess, tiny_images.images), model.logits(tiny_images.images),
                               rtol=1e-4, atol=1e-4)


def test_bad_format_and_missing_run(tiny_images, tmp_path, capsys):
    new_model("logreg", tiny_images).save(tmp_path / "run")
    with pytest.raises(SeethroughError, match="--format must be one of onnx"):
        export_run(tmp_path / "run", "tflite")
    with pytest.raises(RunError, match="no such run folder"):
        export_run(tmp_path / "nope")
    assert main(["export", str(tmp_path / "run"), "--format", "coreml"]) == 2
    assert "--format must be one of onnx" in capsys.readouterr().err.replace("\n", "")


@pytest.mark.parametrize("name", ["smallcnn", "fastcifar-s"])  # fastcifar-s: batch norm gets folded
def test_torchscript_predictor_matches_the_model(tiny_images, name):
    from seethrough.export import torchscript_predictor

    model = new_model(name, tiny_images, seed=2)
    fit(model, tiny_images, TrainConfig(epochs=1, device="cpu", val_fraction=0))
    predict = torchscript_predictor(model, example_batch=8)
    for n in (1, 8, 13):  # other batch sizes than the traced one
        x = tiny_images.images[:n]
        np.testing.assert_allclose(predict(x), model.logits(x), rtol=1e-4, atol=1e-4)

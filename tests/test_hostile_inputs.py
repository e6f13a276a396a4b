"""Bad specs, run folders, checkpoints, weights and image files: each refused in one line, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from seethrough.cli import main
from seethrough.data.images import load_images
from seethrough.errors import DataError, ModelError, RunError, SkippedImageWarning
from seethrough.models import create_spec
from seethrough.trained import Preprocess, TrainedModel


def one_line_error(args, capsys) -> str:
    """Run the CLI; assert exit 2 and one ``error:`` line on stderr; return it."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    return lines[0]


def _spec_file(tmp_path, layers) -> str:
    path = tmp_path / "spec.json"
    path.write_text(layers if isinstance(layers, str) else json.dumps(layers))
    return str(path)


BAD_SPECS = {
    "out='abc'": (["flatten", {"type": "linear", "out": "abc"}], "out='abc' is not allowed"),
    "out=-3": (["flatten", "linear(out=-3)"], "out=-3"),
    "out=1.5": (["flatten", "linear(out=1.5)"], "out=1.5"),
    "out=0": (["conv(out=0)", "flatten", "linear(out=10)"], "out=0"),
    "linear(out=1e9)": (["flatten", "linear(out=1e9)", "linear(out=10)"], "out=1000000000.0"),
    "linear(out=10**9)": (["flatten", "linear(out=1000000000)", "linear(out=10)"], "out=1000000000 is not"),
    "huge model": (["flatten", "linear(out=1000000)", "linear(out=1000)", "linear(out=10)"], "parameters; at most"),
    "final linear not the class count": (["flatten", "linear(out=7)"], "it must be 10, one per class"),
    "no final linear": (["conv(out=4, k=3)", "relu", "flatten"], "end the spec with linear"),
    "ends with a conv": (["conv(out=10, k=3)"], "one per class"),
    "maxpool(k=0)": (["maxpool(k=0)", "flatten", "linear(out=10)"], "k=0"),
    "conv(k=0)": (["conv(out=4, k=0)", "flatten", "linear(out=10)"], "k=0"),
    "conv(stride=True)": (["conv(out=4, stride=True)", "flatten", "linear(out=10)"], "stride=True"),
    "dropout(p=2)": (["flatten", "dropout(p=2)", "linear(out=10)"], "p=2"),
    "dropout(p=nan)": (["flatten", {"type": "dropout", "p": float("nan")}, "linear(out=10)"], "p=nan"),
    "batchnorm(eps=-1)": (["batchnorm(eps=-1)", "flatten", "linear(out=10)"], "eps=-1"),
    "'.' in a name": (["flatten", {"type": "linear", "out": 10, "name": "head.fc"}], "'head.fc' is not allowed"),
    "name in text": (["flatten", "linear(out=10, name='a b')"], "'a b' is not allowed"),
    "positional": (["flatten", "linear(10)"], "give arguments by name"),
    "star args": (["flatten", "linear(**{'out': 10})"], "give arguments by name"),
    "nested text": (["flatten", "linear(out=" + "[" * 200 + "]" * 200 + ")", "linear(out=10)"], "out="),
    "unknown type": ([{"type": ["conv"]}], "unknown layer type"),
    "empty": ([], "non-empty list"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_a_bad_spec_file_is_one_line_naming_the_problem(tmp_path, case):
    layers, match = BAD_SPECS[case]
    with pytest.raises(ModelError) as err:
        create_spec(_spec_file(tmp_path, layers), (1, 8, 8), 10)
    assert match in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text,match", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{\"layers\": " + "{\"a\": " * 50_000 + "1" + "}" * 50_001, "nested too deeply"),
    ("[\"flatten\", \"linear(out=10)\"", "not valid JSON"),
    (b"\xff\xfe[]", "not valid JSON"),
])
def test_deep_or_broken_json_is_one_line(tmp_path, text, match):
    path = tmp_path / "spec.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelError, match=match) as err:
        create_spec(str(path), (1, 8, 8), 10)
    assert "\n" not in str(err.value)


def test_a_bad_spec_through_train_is_one_line(tmp_path, capsys):
    spec = _spec_file(tmp_path, ["flatten", "linear(out=-3)"])
    line = one_line_error(["train", "digits", "--model", spec, "--epochs", "1", "--out", tmp_path / "runs"], capsys)
    assert "out=-3" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.json"))


# ---------------------------------------------------------------------- run folders


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    model = TrainedModel(["flatten", "linear(out=3)"], (8, 8, 1), ["a", "b", "c"], Preprocess.unit(1),
                         meta={"model": "logreg"})
    return model.save(tmp_path / "run")


def _edit_json(run_dir, **changes):
    info = json.loads((run_dir / "model.json").read_text())
    info.update(changes)
    (run_dir / "model.json").write_text(json.dumps(info))


@pytest.mark.parametrize("changes,match", [
    ({"preprocess": "standard"}, "preprocess must be"),
    ({"preprocess": {"mean": [0.0], "std": [0.0]}}, "preprocess must be"),
    ({"preprocess": {"mean": [0.0, 1.0], "std": [1.0, 1.0]}}, "preprocess must be"),
    ({"input_shape": [8, 8]}, "input_shape must be"),
    ({"input_shape": [8, 8, 2]}, "input_shape must be"),
    ({"input_shape": "8x8x1"}, "input_shape must be"),
    ({"class_names": ["a", "b"]}, "the spec gives 3 scores per image but class_names has 2 names"),
    ({"class_names": "abc"}, "class_names must be"),
    ({"spec": [{"type": "linear", "out": 3, "name": "x.y"}]}, "not allowed"),
    ({"spec": "logreg"}, "spec"),
])
def test_a_bad_model_json_is_one_line(run_dir, changes, match, capsys):
    _edit_json(run_dir, **changes)
    with pytest.raises(RunError) as err:
        TrainedModel.load(run_dir)
    assert match in str(err.value) and "\n" not in str(err.value)
    line = one_line_error(["predict", run_dir, __file__], capsys)
    assert "model.json" in line


def _weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


@pytest.mark.parametrize("damage,match", [
    (lambda w: {"linear1.weight": w["linear1.weight"]}, "missing linear1.bias"),
    (lambda w: {**w, "linear9.bias": torch.zeros(3)}, "unexpected linear9.bias"),
    (lambda w: {**w, "linear1.weight": torch.zeros(3, 5)}, "linear1.weight has shape (3, 5), the spec needs (3, 64)"),
    (lambda w: {**w, "linear1.bias": torch.tensor([0.0, float("nan"), 0.0])}, "NaN or infinite"),
    (lambda w: {**w, "linear1.weight": torch.full((3, 64), float("inf"))}, "NaN or infinite"),
])
def test_weights_that_do_not_fit_or_are_not_finite_are_refused_in_one_line(run_dir, damage, match, capsys):
    save_file(damage(_weights(run_dir)), str(run_dir / "model.safetensors"))
    with pytest.raises(RunError, match=match.replace("(", r"\(").replace(")", r"\)")) as err:
        TrainedModel.load(run_dir)
    assert "\n" not in str(err.value)
    one_line_error(["predict", run_dir, __file__], capsys)


@pytest.mark.parametrize("cut", [0, 7, 100, -10])
def test_a_truncated_safetensors_file_is_one_line(run_dir, cut):
    path = run_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(RunError, match="model.safetensors") as err:
        TrainedModel.load(run_dir)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- checkpoints under --resume


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "digits", "--model", "logreg", "--epochs", "1", "--out", str(out),
                 "--name", "lr", "--device", "cpu"]) == 0
    return out / "lr"


def _resume(run, capsys):
    return one_line_error(["train", "digits", "--model", "logreg", "--epochs", "2", "--out", run.parent,
                           "--name", run.name, "--resume", "--device", "cpu"], capsys)


def test_a_truncated_checkpoint_under_resume_is_one_line(trained_run, tmp_path, capsys):
    run = tmp_path / "lr"
    shutil.copytree(trained_run, run)
    ck = run / "checkpoint" / "state.safetensors"
    ck.write_bytes(ck.read_bytes()[:1000])
    assert "not a readable checkpoint" in _resume(run, capsys)


def test_a_checkpoint_without_metadata_under_resume_is_one_line(trained_run, tmp_path, capsys):
    run = tmp_path / "lr"
    shutil.copytree(trained_run, run)
    ck = run / "checkpoint" / "state.safetensors"
    save_file(load_file(str(ck)), str(ck))  # the same tensors, no metadata
    assert "lacks info, optimizer" in _resume(run, capsys)
    save_file(load_file(str(ck)), str(ck), metadata={"info": "{", "optimizer": "[]"})
    assert "metadata is damaged" in _resume(run, capsys)


# ---------------------------------------------------------------------- predict on odd files


def test_predict_on_a_fifo_or_device_does_not_hang(run_dir, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = {}
    t = threading.Thread(target=lambda: result.update(line=one_line_error(["predict", run_dir, fifo], capsys)),
                         daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("predict on a FIFO hung")
    assert "not a regular file" in result["line"]
    with pytest.raises(DataError, match="not a regular file"):
        load_images(["/dev/zero"], (8, 8, 1))


def test_predict_on_many_files_skips_an_unreadable_one_and_predicts_the_rest(run_dir, tmp_path, capsys):
    good = []
    for i in range(3):
        good.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(good[-1])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, kept, skipped = load_images([good[0], bad, good[1], tmp_path / "gone.png", good[2]], (8, 8, 1))
    named = [str(w.message) for w in caught if w.category is SkippedImageWarning]
    assert len(named) == 2 and "bad.png: not a readable image" in named[0] and "gone.png: no such file" in named[1]
    assert images.shape == (3, 8, 8, 1) and kept == good
    assert [os.path.basename(p) for p, _ in skipped] == ["bad.png", "gone.png"]
    code = main(["predict", str(run_dir), str(good[0]), str(bad), str(good[1]), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "bad.png" in err and "Traceback" not in err
    assert [r["image"] for r in json.loads(out)] == [str(good[0]), str(good[1])]
    line = one_line_error(["predict", run_dir, bad, tmp_path / "gone.png"], capsys)
    assert "none of the 2 images could be read" in line

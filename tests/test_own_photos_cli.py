"""Your own photos from the command line: calibrated predictions, unfamiliar marks, --from."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from seethrough.calibrate import scaled_softmax
from seethrough.cli import main
from seethrough.trained import Preprocess, TrainedModel
from seethrough.unfamiliar import energy


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def calibrated_run(tmp_path):
    """A small random CNN whose model.json holds a temperature and an energy threshold."""
    import torch

    torch.manual_seed(0)
    model = TrainedModel(["conv(out=4, k=3)", "relu", "gap", "linear(out=3)"], (8, 8, 3), ["a", "b", "c"],
                         Preprocess([100.0] * 3, [60.0] * 3), meta={"model": "custom"})
    images = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    z = model.logits(images)
    threshold = float(np.median(energy(z, 2.0)))                 # half of these images lie above it
    model.meta["calibration"] = {"temperature": 2.0}
    model.meta["unfamiliar"] = {"score": "energy", "temperature": 2.0, "threshold": threshold,
                                "false_alarm_rate": 0.05}
    run = model.save(tmp_path / "run")
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(im).save(paths[-1])
    return run, paths, z, threshold


def test_predict_is_calibrated_and_marks_unfamiliar_images(calibrated_run, capsys):
    run, paths, z, threshold = calibrated_run
    code, out, _ = run_cli(["predict", run, *paths, "--json", "--top-k", "3"], capsys)
    assert code == 0
    results = json.loads(out)
    cal, raw = scaled_softmax(z, 2.0), scaled_softmax(z)
    for r, p, e in zip(results, cal, energy(z, 2.0)):
        got = {t["class"]: t["probability"] for t in r["top"]}
        assert got["a"] == pytest.approx(p[0], abs=1e-5) and r["temperature"] == 2.0
        assert r["unfamiliar"] == bool(e > threshold)
    assert 0 < sum(r["unfamiliar"] for r in results) < len(results)
    code, out, _ = run_cli(["predict", run, *paths, "--json", "--uncalibrated"], capsys)
    got = {t["class"]: t["probability"] for t in json.loads(out)[0]["top"]}
    assert got["a"] == pytest.approx(raw[0, 0], abs=1e-5)
    code, out, _ = run_cli(["predict", run, *paths], capsys)
    text = " ".join(out.split())                                  # the table wraps lines
    assert code == 0 and "temperature 2.00" in text and "treat the prediction with care" in text
    assert "unfamiliar" in text and "yes" in text


def test_train_from_a_run_freeze_and_features(tmp_path, capsys):
    """digits (8x8 gray) -> a small conv run -> a new 3-class task started from it three ways."""
    from seethrough.data import load_dataset

    out = tmp_path / "runs"
    code, _, err = run_cli(["train", "digits", "--model", "tinyvgg", "--epochs", "1", "--out", out, "--name", "src",
                            "--device", "cpu"], capsys)
    assert code == 0, err
    info = json.loads((out / "src" / "model.json").read_text())
    assert info["calibration"]["temperature"] > 0 and info["unfamiliar"]["false_alarm_rate"] == 0.05
    assert json.loads((out / "src" / "evaluation.json").read_text())["ece_uncalibrated"] >= 0
    # a folder of three digit classes as a user's "photos"
    digits = load_dataset("digits")
    root = tmp_path / "mine"
    for c in (0, 1, 2):
        (root / f"d{c}").mkdir(parents=True)
        for i in np.flatnonzero(digits.labels == c)[:15]:
            Image.fromarray((digits.images[i, ..., 0].astype(np.uint16) * 16).clip(0, 255).astype(np.uint8)).save(
                root / f"d{c}" / f"{i}.png")
    for extra, name in ((["--from", out / "src"], "fine"), (["--from", out / "src", "--freeze"], "head"),
                        (["--model", "logreg", "--features", f"{out / 'src'}:relu2"], "feat")):
        code, stdout, err = run_cli(["train", root, *extra, "--epochs", "2", "--out", out, "--name", name,
                                     "--device", "cpu"], capsys)
        assert code == 0, err
        info = json.loads((out / name / "model.json").read_text())
        assert info["init_from"]["source"] == str((out / "src").resolve())
        assert info["class_names"] == ["d0", "d1", "d2"] and "calibration: temperature" in " ".join(stdout.split())
    assert json.loads((out / "head" / "model.json").read_text())["train"]["body_lr_scale"] is None
    assert json.loads((out / "fine" / "model.json").read_text())["train"]["body_lr_scale"] == 0.1
    assert [l["name"] for l in json.loads((out / "feat" / "model.json").read_text())["spec"]][-1] == "linear_features"
    code, _, err = run_cli(["train", root, "--model", "logreg", "--features", f"{out / 'src'}:nope", "--out", out,
                            "--device", "cpu"], capsys)
    assert code == 2 and "its layers are conv1, relu1" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["train", root, "--freeze", "--out", out], capsys)
    assert code == 2 and "--freeze keeps the layers copied by --from" in err

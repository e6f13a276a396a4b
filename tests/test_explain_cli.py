"""seethrough explain / report / train --snapshots, as a user meets them, and the report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seethrough.cli import main

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CNN = ["conv(out=4, k=3, pad=1)", "relu", "maxpool(k=2)", "conv(out=6, k=3, pad=1)", "relu",
       "flatten", "linear(out=10)"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on the bundled digits in one folder: a small CNN (with snapshots) and logistic regression."""
    out = tmp_path_factory.mktemp("runs")
    spec = out / "cnn.json"
    spec.write_text(json.dumps(CNN))
    assert main(["train", "digits", "--model", str(spec), "--epochs", "2", "--out", str(out), "--name", "cnn",
                 "--device", "cpu", "--snapshots"]) == 0
    assert main(["train", "digits", "--model", "logreg", "--epochs", "1", "--lr", "0.01", "--out", str(out),
                 "--name", "lr", "--device", "cpu"]) == 0
    from seethrough.data import load_splits

    test = load_splits("digits")["test"]
    for i in range(2):
        Image.fromarray(test.images[i][..., 0]).resize((24, 24)).save(out / f"digit{i}.png")
    return out


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_writes_overlays_and_scores(runs, tmp_path, capsys):
    images = [runs / "digit0.png", runs / "digit1.png"]
    code, out, err = run_cli(["explain", runs / "cnn", *images, "--method", "all", "--out", tmp_path, "--score"],
                             capsys)
    assert code == 0, err
    for m in ("saliency", "smoothgrad", "gradcam", "occlusion", "integrated_gradients"):
        for i in range(2):
            png = tmp_path / f"digit{i}-{m}.png"
            assert Image.open(png).size[0] > 100  # a drawn figure, not the 8x8 map
        assert m[:8] in out
    assert "weight_map" not in out  # not applicable to a CNN
    assert "deletion" in out and "randomization" in out and "road" in out
    assert re.search(r"\d\.\d+%", out) and "steps" in out  # integrated gradients' convergence delta per image
    assert "passes" in out or "fails" in out or "undecided" in out
    assert str(tmp_path) in out.replace("\n", "")


def test_explain_target_and_layer(runs, tmp_path, capsys):
    code, out, err = run_cli(["explain", runs / "cnn", runs / "digit0.png", "--layer", "conv1",
                              "--target", "3", "--out", tmp_path], capsys)
    assert code == 0, err
    assert (tmp_path / "digit0-gradcam.png").is_file() and "│ 3" in out
    code, out, err = run_cli(["explain", runs / "lr", runs / "digit0.png", "--method", "weight_map",
                              "--out", tmp_path], capsys)
    assert code == 0, err


@pytest.mark.parametrize("args, message", [
    (["--method", "lime"], "unknown explanation method 'lime'; expected one of saliency, smoothgrad, gradcam"),
    (["--layer", "conv7"], "no layer named 'conv7'; layers: conv1, relu1, maxpool1"),
    (["--target", "cat"], "unknown target class 'cat'; classes: 0, 1, 2"),
])
def test_explain_bad_input_is_one_line(runs, capsys, args, message):
    code, _, err = run_cli(["explain", runs / "cnn", runs / "digit0.png", *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_gradcam_without_conv_and_unreadable_image(runs, tmp_path, capsys):
    code, _, err = run_cli(["explain", runs / "lr", runs / "digit0.png"], capsys)
    assert code == 2 and "has none; try --method saliency" in err
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    code, _, err = run_cli(["explain", runs / "cnn", bad], capsys)
    assert code == 2 and "notes.png: not a readable image" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["explain", runs / "cnn", bad, runs / "digit1.png", "--out", tmp_path], capsys)
    assert code == 0 and "skipped" in err and "notes.png" in err      # named, skipped; the others explained
    assert (tmp_path / "digit1-gradcam.png").is_file() and not (tmp_path / "notes-gradcam.png").exists()


def test_snapshots_hold_every_epoch(runs):
    from safetensors.numpy import load_file

    from seethrough.trained import TrainedModel
    from seethrough.explain.snapshots import load_snapshots

    index, snaps = load_snapshots(runs / "cnn")
    assert index["epochs"] == [1, 2] and index["first_layer"] == "conv1"
    assert index["map_layers"] == ["conv1", "relu1", "maxpool1", "conv2", "relu2"]
    final = TrainedModel.load(runs / "cnn").net.conv1.weight.detach().numpy()
    np.testing.assert_array_equal(snaps[-1][1]["first_layer"], final)  # the last epoch's kernels are the saved ones
    assert not np.array_equal(snaps[0][1]["first_layer"], final)
    assert load_file(str(runs / "cnn" / "snapshots" / "epoch-001.safetensors"))["maps.conv1"].shape == (4, 8, 8)


@pytest.fixture(scope="module")
def report(runs):
    assert main(["report", str(runs / "cnn")]) == 0
    return runs / "cnn" / "report.html"


def test_report_sections_and_confusion_links(report):
    from seethrough.evaluate import evaluate
    from seethrough.report.run_report import load_test_split
    from seethrough.trained import TrainedModel

    html = report.read_text()
    for anchor in ("curves", "per-class", "confusion", "wrong", "layers", "receptive", "snapshots", "compare",
                   "faithfulness"):
        assert f'id="{anchor}"' in html
    assert "src=\"http" not in html and html.count("<script") == 1  # self-contained: one inline script
    model = TrainedModel.load(report.parent)
    ev = evaluate(model, load_test_split(model))
    links = set(re.findall(r'href="#(cell-\d+-\d+)"', html))
    assert len(links) == np.count_nonzero(ev.confusion)
    assert all(f'id="{a}"' in html for a in links)
    i, j = np.argwhere(ev.confusion == ev.confusion.max())[0]
    block = html.split(f'id="cell-{i}-{j}"')[1].split('id="cell-')[0]
    assert block.count("<img") == min(40, ev.confusion[i, j])
    for method in ("saliency", "gradcam", "occlusion", "integrated_gradients"):
        assert f"<td>{method}</td>" in html
    for removal in ("road", "blur", "mean", "zero"):
        assert f"<td>{removal}</td>" in html
    assert "(passes)" in html or "(fails)" in html
    wrong = [(a, b) for a, b in np.argwhere(ev.confusion) if a != b]
    assert all(f'id="cell-{a}-{b}" open' in html for a, b in wrong)  # wrong cells open, right ones closed
    assert f'id="cell-{i}-{i}">' in html or ev.confusion[i, i] == 0


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium; make setup tries it)")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = report.resolve().as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Faithfulness" in dom.stdout and dom.stdout.count("<img") >= 20
    subprocess.run([browser, *flags, "--window-size=1200,2400", f"--screenshot={shot}", url],
                   capture_output=True, text=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2400, 1200)
    assert (pixels < 128).mean() > 0.01  # text and figures were drawn, not a blank page

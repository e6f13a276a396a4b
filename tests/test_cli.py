"""The command line, as a user meets it: the main job, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_image_folder
from seethrough.cli import main


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "digits", "--model", "logreg", "--epochs", "3", "--lr", "0.01",
                 "--out", str(out), "--name", "lr", "--device", "cpu"]) == 0
    return out / "lr"


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_trains_both_models_and_writes_the_report(tmp_path, capsys):
    code, out, _ = run_cli(["demo", "--out", tmp_path / "demo", "--device", "cpu"], capsys)
    assert code == 0
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "report:" in out and "logreg" in out and "smallcnn" in out
    assert html.count("data:image/png;base64,") >= 8  # images are embedded: readable offline
    assert "src=\"http" not in html
    for part in ("Test accuracy", "confusion matrix", "Logistic-regression weights", "kernels",
                 "Feature maps", "Misclassified"):
        assert part.lower() in html.lower()
    accuracy = {}
    for name in ("logreg", "smallcnn"):  # evaluate the saved runs again, from their folders
        code, _, _ = run_cli(["evaluate", tmp_path / "demo" / "runs" / name], capsys)
        assert code == 0
        accuracy[name] = json.loads((tmp_path / "demo" / "runs" / name / "evaluation.json").read_text())["accuracy"]
    assert accuracy["logreg"] >= 0.95 and accuracy["smallcnn"] >= 0.97


def test_train_evaluate_predict_on_a_folder(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", n_per_class=10)
    code, out, _ = run_cli(["train", root, "--model", "tinyvgg", "--epochs", "2", "--out", tmp_path / "runs",
                            "--device", "cpu"], capsys)
    assert code == 0
    run = tmp_path / "runs" / "pets-tinyvgg"
    assert (run / "model.safetensors").is_file() and (run / "confusion.png").is_file()
    code, out, _ = run_cli(["evaluate", run], capsys)
    assert code == 0 and "precision" in out
    # an image of another size and mode is converted the way training data was
    big = tmp_path / "big.png"
    Image.fromarray(np.full((50, 70), 200, np.uint8), "L").save(big)
    code, out, _ = run_cli(["predict", run, big, root / "cats" / "0.png", "--json", "--top-k", "2"], capsys)
    assert code == 0
    results = json.loads(out)
    assert len(results) == 2 and len(results[0]["top"]) == 2
    assert abs(sum(t["probability"] for t in results[0]["top"]) - 1) < 1e-5  # two classes: top-2 is all
    code, out, _ = run_cli(["predict", run, big, root / "cats" / "0.png", "--json", "--precision", "bf16"], capsys)
    top = lambda rs: [{t["class"]: t["probability"] for t in r["top"]} for r in rs]
    assert code == 0
    for low, ref in zip(top(json.loads(out)), top(results)):
        assert abs(low[min(low)] - ref[min(low)]) < 0.05  # bf16: the same probabilities, to about two digits
    code, _, err = run_cli(["predict", run, big, "--precision", "half"], capsys)
    assert code == 2 and "--precision must be one of fp32, bf16, auto" in err


def test_second_run_gets_a_new_folder(digits_run, capsys):
    code, _, _ = run_cli(["train", "digits", "--model", "logreg", "--epochs", "1", "--out", digits_run.parent,
                          "--name", "lr", "--device", "cpu"], capsys)
    assert code == 0 and (digits_run.parent / "lr-2" / "model.json").is_file()
    assert (digits_run / "model.json").is_file()  # the first run is untouched


def test_resume_from_cli(digits_run, capsys):
    code, _, _ = run_cli(["train", "digits", "--model", "logreg", "--epochs", "5", "--lr", "0.01",
                          "--out", digits_run.parent, "--name", "lr", "--resume", "--device", "cpu"], capsys)
    assert code == 0
    lines = (digits_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4, 5]


def _bad_inputs(tmp_path, digits_run):
    empty = tmp_path / "empty"
    empty.mkdir()
    one = write_image_folder(tmp_path / "one", classes=("only",))
    no_json = tmp_path / "nojson"
    no_json.mkdir()
    old = tmp_path / "old"
    old.mkdir()
    info = json.loads((digits_run / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**info, "format_version": 99}))
    bad_img = tmp_path / "bad.png"
    bad_img.write_bytes(b"\x89PNG not really")
    return [
        (["train", tmp_path / "missing"], "no such folder"),
        (["train", empty], "empty folder"),
        (["train", one], "at least two"),
        (["train", "imagenet-42"], "unknown dataset 'imagenet-42'; expected one of digits"),
        (["train", "digits", "--model", "resnet"], "unknown model 'resnet'; expected one of"),
        (["train", "digits", "--model", "seed-cnn"], "does not fit 8x8x1"),
        (["train", "digits", "--optimizer", "lbfgs"], "--optimizer must be one of"),
        (["train", "digits", "--precision", "half"], "--precision must be one of fp32, bf16, auto"),
        (["evaluate", no_json], "model.json: missing"),
        (["evaluate", old], "format version 99 is not supported"),
        (["predict", tmp_path / "nowhere", bad_img], "no such run folder"),
        (["predict", digits_run, bad_img], "bad.png: not a readable image"),
        (["predict", digits_run, tmp_path / "nofile.png"], "nofile.png: no such file"),
    ]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, digits_run, capsys):
    for args, message in _bad_inputs(tmp_path, digits_run):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, err)
        assert message in " ".join(err.split()), (args, err)
        assert "Traceback" not in err + out


def test_corrupt_training_image_warns_and_strict_fails(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", n_per_class=6)
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code, _, err = run_cli(["train", root, "--model", "logreg", "--epochs", "1", "--out", tmp_path / "r",
                            "--device", "cpu"], capsys)
    assert code == 0 and "warning:" in err and "broken.jpg" in err
    code, _, err = run_cli(["train", root, "--model", "logreg", "--epochs", "1", "--out", tmp_path / "r",
                            "--strict", "--device", "cpu"], capsys)
    assert code == 2 and "broken.jpg" in err


def test_datasets_and_models_listings(capsys, tmp_path):
    code, out, _ = run_cli(["datasets", "--data-dir", tmp_path], capsys)
    assert code == 0
    for name in ("digits", "mnist", "fashion-mnist", "cifar10", "catvnoncat", "synthetic"):
        assert name in out
    assert "bundled" in out
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0 and "122,570" in out


@pytest.mark.shared_data
def test_datasets_sees_shared_copies(shared_data_dir, capsys):
    code, out, _ = run_cli(["datasets", "--data-dir", shared_data_dir], capsys)
    assert code == 0 and "not on disk" not in out.split("mnist")[1].split("\n")[0]

"""Experiments: the image transforms against NumPy oracles, the learning-curve bookkeeping, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seethrough.cli import main
from seethrough.errors import SeethroughError
from seethrough.experiments import load_results, save_result
from seethrough.experiments.invariance import default_levels, invariance, transform
from seethrough.experiments.learning_curve import (default_sizes, learning_curve, overtakes, stratified_subset,
                                                   summarize, train_model)


@pytest.fixture
def squares():
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, size=(16, 8, 8, 1), dtype=np.uint8)


def _shifted(image, dx, dy):
    """The oracle: ``image`` moved right by dx and down by dy, the uncovered part 0."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        image[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


def test_shift_moves_each_image_whole_pixels_in_one_of_eight_directions(squares):
    moved = transform(squares, "shift", 2, seed=3)
    directions = [(dx, dy) for dx in (-2, 0, 2) for dy in (-2, 0, 2) if (dx, dy) != (0, 0)]
    for image, out in zip(squares, moved):
        assert any(np.array_equal(out, _shifted(image, dx, dy)) for dx, dy in directions)


def test_rotating_by_90_degrees_is_rot90_either_way(squares):
    turned = transform(squares, "rotate", 90, seed=1)
    senses = set()
    for image, out in zip(squares, turned):
        k = [k for k in (1, 3) if np.array_equal(out, np.rot90(image, k, axes=(0, 1)))]
        assert k, "not a quarter turn"
        senses.add(k[0])
    assert senses == {1, 3}  # both senses are drawn


def test_scale_and_noise_at_their_identity_leave_images_alone_and_noise_has_its_std(squares):
    assert transform(squares, "scale", 1.0) is squares and transform(squares, "noise", 0) is squares
    grey = np.full((200, 16, 16, 1), 128, np.uint8)
    noisy = transform(grey, "noise", 20).astype(float) - 128
    assert abs(noisy.std() - 20) < 0.5 and abs(noisy.mean()) < 0.5
    half = transform(np.full((1, 8, 8, 1), 200, np.uint8), "scale", 0.5)[0, ..., 0]
    assert (half[2:6, 2:6] == 200).all() and half[0].max() == 0  # shrunk into the middle, black around
    with pytest.raises(SeethroughError, match="unknown transform"):
        transform(squares, "blur", 1)


def test_default_levels_start_at_the_identity():
    assert default_levels("shift", 8) == [0, 1, 2, 3]
    assert default_levels("rotate", 32)[0] == 0 and 1.0 in default_levels("scale", 32)


def test_stratified_subset_keeps_the_class_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    idx = stratified_subset(labels, 40, seed=0)
    assert len(idx) == 40 and len(set(idx)) == 40
    assert np.bincount(labels[idx]).tolist() == [20, 12, 8]
    assert not np.array_equal(idx, stratified_subset(labels, 40, seed=1))
    assert len(stratified_subset(labels, 500, seed=0)) == 100


def test_default_sizes_grow_to_the_whole_split():
    assert default_sizes(1347, 10) == [50, 110, 260, 590, 1347]
    assert default_sizes(30, 10) == [10, 13, 17, 23, 30]
    assert default_sizes(209, 2) == [10, 21, 46, 98, 209]


def test_overtakes_is_the_size_from_which_the_other_model_stays_ahead():
    rows = [{"model": m, "size": s, "seed": 0, "accuracy": a} for m, s, a in [
        ("lr", 10, 0.6), ("cnn", 10, 0.7), ("lr", 20, 0.7), ("cnn", 20, 0.65),
        ("lr", 40, 0.8), ("cnn", 40, 0.85), ("lr", 80, 0.82), ("cnn", 80, 0.9)]]
    summary = summarize(rows, ["lr", "cnn"])
    assert overtakes(summary, "lr", "cnn") == 40  # ahead at 10, behind at 20: counted from 40
    assert overtakes(summary, "cnn", "lr") is None


def test_learning_curve_rows_are_the_trainings_it_reports(tiny_images):
    train, test = tiny_images.split(0.3, seed=0)
    result = learning_curve(train, test, ["logreg", "smallcnn"], [9, 30, 1000], seeds=2, steps=4, jobs=1)
    assert result["sizes"] == [9, 30, len(train)]
    assert len(result["rows"]) == 2 * 3 * 2
    row = next(r for r in result["rows"] if r["model"] == "smallcnn" and r["size"] == 30 and r["seed"] == 1)
    sub = train.subset(stratified_subset(train.labels, 30, 1))  # the oracle: the same training, by hand
    model = train_model("smallcnn", sub, steps=4, batch_size=32, lr=3e-3, seed=1)
    assert row["accuracy"] == float((model.predict(test.images) == test.labels).mean())
    mean = np.mean([r["accuracy"] for r in result["rows"] if r["model"] == "logreg" and r["size"] == 9])
    assert next(s for s in result["summary"] if s["model"] == "logreg" and s["size"] == 9)["mean"] == mean
    with pytest.raises(SeethroughError, match="fewer images than the 3 classes"):
        learning_curve(train, test, ["logreg"], [2], seeds=1)


def test_saved_results_are_read_back(tmp_path):
    save_result(tmp_path, "x", {"experiment": "x", "rows": [1]}, b"\x89PNG")
    (tmp_path / "experiments" / "broken.json").write_text("{")
    [(name, result, png)] = load_results(tmp_path)
    assert name == "x" and result["rows"] == [1] and png.read_bytes() == b"\x89PNG"


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for model in ("logreg", "smallcnn"):
        assert main(["train", "digits", "--model", model, "--epochs", "2", "--lr", "0.01",
                     "--out", str(out), "--name", model, "--device", "cpu"]) == 0
    return out


def test_invariance_cli_writes_table_and_figure_into_every_run(digits_runs, capsys):
    runs = [digits_runs / "logreg", digits_runs / "smallcnn"]
    assert main(["experiment", "invariance", *map(str, runs), "--shift", "--noise", "--limit", "60"]) == 0
    for run in runs:
        result = json.loads((run / "experiments" / "invariance.json").read_text())
        assert (run / "experiments" / "invariance.png").read_bytes()[:4] == b"\x89PNG"
    assert result["runs"] == ["logreg", "smallcnn"] and result["transforms"] == ["shift", "noise"]
    assert result["n_test"] == {"logreg": 60, "smallcnn": 60}
    from seethrough.experiments.invariance import sample
    from seethrough.report.run_report import experiments_section
    from seethrough.run import load_test_split
    from seethrough.trained import TrainedModel

    model = TrainedModel.load(runs[1])  # the oracle: the unmoved accuracy, computed directly
    test = sample(load_test_split(model), 60)
    at_zero = next(r for r in result["rows"] if r["run"] == "smallcnn" and r["transform"] == "shift" and r["level"] == 0)
    assert at_zero["accuracy"] == float((model.predict(test.images) == test.labels).mean())
    html = experiments_section(runs[0])
    assert 'id="experiments"' in html and "invariance" in html and "data:image/png;base64," in html


def test_learning_curve_cli(tmp_path, capsys):
    out = tmp_path / "lc"
    code = main(["experiment", "learning-curve", "digits", "--models", "logreg", "--sizes", "20,40",
                 "--seeds", "2", "--steps", "3", "--jobs", "1", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "experiments" / "learning-curve.json").read_text())
    assert result["sizes"] == [20, 40] and len(result["rows"]) == 4
    assert "wrote" in capsys.readouterr().out
    assert main(["experiment", "learning-curve", "digits", "--sizes", "20,x"]) == 2
    assert main(["experiment", "learning-curve", "digits", "--models", "lenet5", "--sizes", "20"]) == 2
    assert "--sizes" in capsys.readouterr().err

"""The lessons compute their numbers with the NumPy engine; each is checked against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seethrough.cli import main
from seethrough.errors import SeethroughError
from seethrough.lessons import list_lessons, run_lesson
from seethrough.lessons import engine, examples
from seethrough.lessons.base import Grid, Table
from seethrough.lessons.render import lesson_html
from seethrough.models import create_spec, list_models


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """These arrays are small; one BLAS thread avoids OpenBLAS's slowdown when the cores are shared."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    with threadpool_limits(1, user_api="blas"):
        yield


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def grids(lesson) -> dict[str, np.ndarray]:
    out = {}
    for block in lesson.blocks:
        for g in block if isinstance(block, list) else [block]:
            if isinstance(g, Grid):
                out[g.title] = g.values
    return out


@pytest.mark.parametrize("name", list_lessons())
def test_every_lesson_runs_and_renders(name, tmp_path):
    lesson = run_lesson(name)
    assert lesson.blocks
    page = lesson_html(lesson)
    assert page.startswith("<!doctype html>") and lesson.title in page


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2), (3, 0)])
def test_convolution_matches_torch(stride, padding):
    x, w = examples.BINARY_IMAGE, examples.X_FILTER
    out, cols = engine.conv(x, w, stride, padding)
    ref = F.conv2d(t(x)[None, None], t(w)[None, None], stride=stride, padding=padding)[0, 0].numpy()
    assert np.allclose(out, ref)
    assert np.allclose((cols[:, :, 0] * w).sum((-2, -1)), out)  # every shown dot product adds up
    lesson = run_lesson("convolution", stride=stride, padding=padding)
    table = next(b for b in lesson.blocks if isinstance(b, Table))
    assert [float(r[-1]) for r in table.rows] == pytest.approx(ref.ravel().tolist())


def test_padding_relu_pooling_match_torch():
    x = examples.BINARY_IMAGE
    g = grids(run_lesson("padding", padding=2))
    assert np.array_equal(g["padded by 2: 9x9"], F.pad(t(x), (2, 2, 2, 2)).numpy())
    g = grids(run_lesson("relu"))
    fmap = F.conv2d(t(x)[None, None], t(examples.VERTICAL_EDGE)[None, None])
    assert np.array_equal(g["ReLU(feature map)"], F.relu(fmap)[0, 0].numpy())
    assert (g["feature map"] < 0).any()  # the lesson has something to zero
    p = examples.POOL_INPUT
    for stride in (None, 1):
        g = grids(run_lesson("pooling", stride=stride))
        s = stride or 2
        assert np.array_equal(g["max pool 2x2"], F.max_pool2d(t(p)[None], 2, s)[0].numpy())
        assert np.allclose(g["average pool 2x2"], F.avg_pool2d(t(p)[None], 2, s)[0].numpy())


@pytest.mark.parametrize("stride", [1, 2])
def test_stride_lesson_matches_torch(stride):
    x, w = examples.small_rgb(), examples.small_filters(3)
    g = grids(run_lesson("stride", stride=stride))
    fmap = F.conv2d(t(x)[None], t(w)[None], stride=stride)[0, 0].numpy()
    assert np.array_equal(g[f"feature map at stride {stride}: {fmap.shape[0]}x{fmap.shape[1]}"], fmap)
    assert fmap.shape == ((3, 3) if stride == 1 else (2, 2))


@pytest.mark.parametrize("model", list_models())
def test_receptive_field_theory_equals_gradient_measurement(model):
    lesson = run_lesson("receptive-field", model=model, input="96x96x3")
    rows = next(b for b in lesson.blocks if isinstance(b, Table)).rows
    spec = create_spec(model, (3, 96, 96), 10)
    assert [r[0] for r in rows] == [l.name for l in spec][:len(rows)]
    for r in rows:
        r_theory, r_measured = int(r[3].split("x")[0]), int(r[6].split("x")[0])
        if r_theory <= 48:  # the centre unit's field lies inside the 96x96 image
            assert r[3] == r[6], r
        else:  # cut at the border, never larger than the theory says
            assert r[3] == r[6] or (r_measured < r_theory and "cut" in r[6]), r


def test_logistic_regression_step_matches_autograd():
    from seethrough.lessons.logistic_regression import TINY_X, TINY_Y

    g = grids(run_lesson("logistic-regression", lr=0.5))
    x = t(TINY_X / 255)
    w = torch.zeros(4, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    w, b = w.double().detach().requires_grad_(), b.double().detach().requires_grad_()
    loss = F.binary_cross_entropy_with_logits(x @ w + b, t(TINY_Y))
    loss.backward()
    assert np.allclose(g["dw"].ravel(), w.grad.numpy())
    assert np.allclose(g["db"].ravel(), b.grad.numpy())
    assert np.allclose(g["new w"].ravel(), -0.5 * w.grad.numpy())


def test_backprop_gradients_equal_autograd():
    lesson = run_lesson("backprop")
    table = next(b for b in lesson.blocks if isinstance(b, Table))
    names = [r[0] for r in table.rows]
    assert "dL/dconv1.weight" in names and "dL/dlinear1.bias" in names
    assert all(float(r[-1]) < 1e-12 for r in table.rows)


def test_cli_lists_lessons(capsys):
    assert main(["lesson"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_lessons())


def test_cli_user_numbers_and_html(tmp_path, capsys):
    csv = tmp_path / "img.csv"
    csv.write_text("0,1,2,3\n4,5,6,7\n8,9,10,11\n12,13,14,15\n")
    page = tmp_path / "lesson.html"
    rc = main(["lesson", "convolution", "--image", str(csv), "--kernel", "1,0;0,-1", "--stride", "2",
               "--padding", "1", "--html", str(page)])
    assert rc == 0
    ref = F.conv2d(t(np.arange(16).reshape(1, 1, 4, 4)), t([[1, 0], [0, -1]])[None, None], stride=2, padding=1)
    text = page.read_text()
    for v in ref.numpy().ravel():
        assert f"<td>{int(v)}</td>" in text


def test_cli_image_file_input(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    assert main(["lesson", "pooling", "--image", str(tmp_path / "p.png")]) == 0
    assert main(["lesson", "stride", "--image", str(tmp_path / "p.png"), "--stride", "3"]) == 0


@pytest.mark.parametrize("args,msg", [
    (["convolution", "--kernel", "1,1,1,1,1,1;" * 6], "kernel is larger than the padded input"),
    (["convolution", "--stride", "0"], "--stride must be at least 1"),
    (["padding", "--padding", "-1"], "--padding must be 0 or more"),
    (["convolution", "--kernel", "1,0;0"], "rows have different lengths"),
    (["convolution", "--kernel", "1,2,3;4,5,6"], "expected a square one"),
    (["nosuch"], "unknown lesson 'nosuch'"),
    (["receptive-field", "--model", "nosuch"], "unknown model 'nosuch'"),
    (["receptive-field", "--input", "32x32"], "--input must be HxWxC"),
    (["logistic-regression", "--data", "mnist"], "catvnoncat only"),
])
def test_cli_bad_input_is_one_line(args, msg, capsys):
    assert main(["lesson", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in " ".join(err.split()) and err.count("\n") <= 2  # one line, maybe soft-wrapped by rich


def test_non_numeric_csv_names_file_and_cell(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("1,2,3\n4,cat,6\n7,8,9\n")
    assert main(["lesson", "convolution", "--image", str(csv)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "bad.csv" in err and "row 2: 'cat' is not a number" in err


def test_spec_with_a_layer_the_engine_lacks(tmp_path, capsys, monkeypatch):
    from seethrough.models import LAYER_KINDS
    from seethrough.models import registry

    monkeypatch.setitem(LAYER_KINDS, "attention", {})
    monkeypatch.setitem(registry.MODELS, "odd", lambda shape, n: ["conv(out=2)", "attention", "flatten",
                                                                   f"linear(out={n})"])
    with pytest.raises(SeethroughError, match="NumPy engine has no 'attention' layer"):
        run_lesson("receptive-field", model="odd", input="8x8x1")


@pytest.mark.shared_data
def test_catvnoncat_exercise_steps_equal_autograd(shared_data_dir, tmp_path):
    """A short run of the exercise: the engine's gradient descent is the same as autograd's, and
    the run folder it writes gives sigmoid(z) as the cat probability."""
    from seethrough.data import load_splits
    from seethrough.lessons.logistic_regression import save_run, train_catvnoncat
    from seethrough.trained import TrainedModel

    r = train_catvnoncat(shared_data_dir, iterations=30, lr=0.005, every=1)
    train = load_splits("catvnoncat", data_dir=shared_data_dir)["train"]
    x = t(train.images.reshape(len(train), -1) / 255)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    costs = []
    for _ in range(30):
        loss = F.binary_cross_entropy_with_logits(x @ w + b, t(train.labels))
        costs.append(loss.item())
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= 0.005 * w.grad
            b -= 0.005 * b.grad
    assert np.allclose([c for _, c in r["costs"]], costs, rtol=1e-10)
    assert np.allclose(r["weight"], w.detach().numpy(), atol=1e-12)
    model = TrainedModel.load(save_run(r, tmp_path / "run"))
    z = (x @ w + b).detach().numpy()
    p_cat = model.predict_proba(train.images[:20])[:, model.class_names.index("cat")]
    assert np.allclose(p_cat, 1 / (1 + np.exp(-z[:20])), atol=1e-5)


@pytest.mark.shared_data
@pytest.mark.slow
def test_catvnoncat_exercise_reaches_the_classic_accuracy(shared_data_dir, tmp_path):
    lesson = run_lesson("logistic-regression", data="catvnoncat", data_dir=str(shared_data_dir), out=tmp_path)
    acc = dict(next(b for b in lesson.blocks if isinstance(b, Table) and b.header == ["split", "accuracy"]).rows)
    assert float(acc["train"].rstrip("%")) >= 99 and float(acc["test"].rstrip("%")) >= 70
    assert (tmp_path / "cost.png").stat().st_size > 1000
    assert (tmp_path / "run" / "model.safetensors").is_file()

"""Logistic regression from scratch: the sigmoid, the loss, one gradient step; and the cat-vs-non-cat exercise.

The tiny example works through one step by hand on four 2x2 images. With
``data="catvnoncat"`` the lesson reproduces the classic exercise exactly: flatten each
64x64x3 image, divide by 255, start from zero weights, and run full-batch gradient descent
(learning rate 0.005, 2,000 iterations) on sigmoid + binary cross-entropy. It draws the
cost curve and writes a run folder that ``seethrough predict`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scratch import layers as L
from .base import Lesson, fmt

# Four 2x2 "images" (pixel values 0..255), flattened, and their labels: 1 = bright on the left.
TINY_X = np.array([[200, 30, 220, 10],
                   [20, 210, 40, 230],
                   [180, 60, 250, 20],
                   [50, 190, 30, 160]], dtype=np.float64)
TINY_Y = np.array([1, 0, 1, 0])


def logistic_model(n_features: int) -> L.Linear:
    """One linear unit z = w · x + b, started at zero as the exercise does."""
    lin = L.Linear("linear1", n_features, 1, True, dtype=np.float64)
    lin.params["weight"] = np.zeros((1, n_features))
    lin.params["bias"] = np.zeros(1)
    return lin


def gradient_step(lin: L.Linear, loss_fn, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    """One full-batch step: forward, loss, backward, w -= lr * dw; returns the loss before the step."""
    cost = loss_fn.forward(lin.forward(x), y)
    lin.backward(loss_fn.backward())
    for k in lin.params:
        lin.params[k] -= lr * lin.grads[k]
    return cost


def tiny(lr: float = 0.1) -> Lesson:
    x, y = TINY_X / 255, TINY_Y                                     # (m, n) scaled to 0..1
    lin, loss_fn = logistic_model(x.shape[1]), L.SigmoidBinaryCrossEntropy()
    lesson = Lesson("logistic-regression", "Logistic regression, one step by hand")
    lesson.text("Each image is flattened to a row of pixels and divided by 255. The model scores it with "
                "z = w · x + b and turns the score into a probability with the sigmoid a = 1 / (1 + e^-z). "
                "The loss is the binary cross-entropy -(y log a + (1 - y) log(1 - a)), averaged over the images.")
    lesson.grids(("x = pixels / 255 (one image per row)", x), ("y", y))
    z = lin.forward(x)[:, 0]
    a = L.sigmoid(z)
    cost = loss_fn.forward(lin.forward(x), y)
    lesson.text(f"Start from w = 0, b = 0: every z is 0, every a = sigmoid(0) = {fmt(a[0], 4)}, "
                f"and the loss is {fmt(cost, 4)} (= log 2).")
    lin.backward(loss_fn.backward())
    dz = (a - y) / len(y)
    lesson.table(["image", "z", "a = sigmoid(z)", "y", "(a - y) / m"],
                 [[i, fmt(z[i], 4), fmt(a[i], 4), int(y[i]), fmt(dz[i], 4)] for i in range(len(y))])
    lesson.text("The gradient of the loss: dw = x^T (a - y) / m and db = sum(a - y) / m.")
    lesson.grids(("dw", lin.grads["weight"]), ("db", lin.grads["bias"]))
    for k in lin.params:
        lin.params[k] -= lr * lin.grads[k]
    new_cost = loss_fn.forward(lin.forward(x), y)
    lesson.text(f"One step with learning rate {lr}: w = w - {lr} * dw, b = b - {lr} * db.")
    lesson.grids(("new w", lin.params["weight"]), ("new b", lin.params["bias"]))
    new_a = L.sigmoid(lin.forward(x)[:, 0])
    lesson.table(["image", "new a", "y"], [[i, fmt(new_a[i], 4), int(y[i])] for i in range(len(y))])
    lesson.text(f"The loss fell from {fmt(cost, 4)} to {fmt(new_cost, 4)}. Gradient descent repeats this step.")
    return lesson


def train_catvnoncat(data_dir=None, iterations: int = 2000, lr: float = 0.005, every: int = 100, log=None) -> dict:
    """The classic exercise. Returns weights, bias, cost curve and accuracies (float64).

    ``log``, when given, is called with a line every ``every`` iterations as the training goes.
    """
    from ..data import load_splits

    parts = load_splits("catvnoncat", data_dir=data_dir)
    train, test = parts["train"], parts["test"]
    x_tr = train.images.reshape(len(train), -1) / 255               # (209, 12288), flattened H, W, C
    x_te = test.images.reshape(len(test), -1) / 255
    lin, loss_fn = logistic_model(x_tr.shape[1]), L.SigmoidBinaryCrossEntropy()
    costs = []
    for i in range(iterations):
        cost = gradient_step(lin, loss_fn, x_tr, train.labels, lr)
        if i % every == 0:
            costs.append((i, cost))
            if log is not None:
                log(f"iteration {i:>5}: cost {cost:.6f}")

    def accuracy(x, y):
        return float(((lin.forward(x)[:, 0] > 0) == (y == 1)).mean())  # a > 0.5 exactly when z > 0

    return {"weight": lin.params["weight"][0], "bias": float(lin.params["bias"][0]), "costs": costs,
            "train_acc": accuracy(x_tr, train.labels), "test_acc": accuracy(x_te, test.labels),
            "class_names": train.class_names, "image_shape": train.image_shape,
            "n_train": len(train), "n_test": len(test)}


def save_run(result: dict, run_dir) -> Path:
    """A run folder for the trained unit: spec ``logreg`` with two logits [0, z], so softmax gives sigmoid(z).

    The exercise flattens (H, W, C); the spec's flatten runs on (C, H, W), so the weights are reordered.
    """
    import torch

    from ..models import create_spec
    from ..trained import Preprocess, TrainedModel

    h, w, c = result["image_shape"]
    w_chw = result["weight"].reshape(h, w, c).transpose(2, 0, 1).ravel()
    model = TrainedModel(create_spec("logreg", (c, h, w), 2), (h, w, c), result["class_names"], Preprocess.unit(c),
                         meta={"model": "logreg", "dataset": "catvnoncat", "data": "catvnoncat",
                               "normalize": "unit", "trained_by": "seethrough lesson logistic-regression"})
    weight = np.stack([np.zeros_like(w_chw), w_chw])
    model.net.load_state_dict({"linear1.weight": torch.tensor(weight, dtype=torch.float32),
                               "linear1.bias": torch.tensor([0.0, result["bias"]], dtype=torch.float32)})
    return model.save(run_dir)


def cost_figure(costs):
    from ..viz.figures import plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([i for i, _ in costs], [c for _, c in costs])
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost")
    ax.set_title("logistic regression on catvnoncat: cost")
    ax.grid(alpha=0.3)
    return fig


def exercise(data_dir=None, iterations: int = 2000, lr: float = 0.005, out="lesson-logistic-regression",
             log=None) -> Lesson:
    from .. import _io
    from ..run import new_folder
    from ..viz import fig_to_png

    wanted = Path(out)
    out = new_folder(wanted)  # never over an earlier run's files
    if out != wanted and log is not None:
        log(f"{wanted} holds files already; writing to {out}")
    r = train_catvnoncat(data_dir, iterations, lr, log=log)
    png = fig_to_png(cost_figure(r["costs"]))
    _io.write_bytes(out / "cost.png", png)
    run_dir = save_run(r, out / "run")
    h, w, c = r["image_shape"]
    lesson = Lesson("logistic-regression", "Logistic regression from scratch: cat vs non-cat")
    lesson.text(f"{r['n_train']} training and {r['n_test']} test images, {h}x{w}x{c}, flattened to "
                f"{h * w * c} numbers and divided by 255. w and b start at 0; every iteration takes one "
                f"gradient step on all {r['n_train']} images at once, learning rate {lr}.")
    lesson.table(["iteration", "cost"], [[i, f"{c:.6f}"] for i, c in r["costs"]], "cost every 100 iterations")
    lesson.figure(png, "cost per iteration", out / "cost.png")
    lesson.table(["split", "accuracy"], [["train", f"{r['train_acc']:.2%}"], ["test", f"{r['test_acc']:.2%}"]])
    lesson.text(f"Run folder: {run_dir}. Any photo of any size: seethrough predict {run_dir} PHOTO.jpg")
    return lesson


def run(data=None, data_dir=None, iterations: int = 2000, lr=None, out="lesson-logistic-regression", log=None,
        **_) -> Lesson:
    from ..errors import SeethroughError

    if data is None:
        return tiny(lr or 0.1)
    if data != "catvnoncat":
        raise SeethroughError(f"--data {data}: the logistic-regression lesson runs on catvnoncat only; "
                              "leave --data out for the tiny example")
    if iterations < 1:
        raise SeethroughError(f"--iterations must be at least 1, got {iterations}")
    return exercise(data_dir, iterations, lr or 0.005, out, log=log)

"""Backpropagation: one training step of a tiny CNN, every gradient beside PyTorch autograd's.

conv(2 filters, 3x3) -> ReLU -> 2x2 max pool -> flatten -> linear(2 classes) -> softmax
cross-entropy. The forward pass keeps each layer's output; the backward pass walks the
layers in reverse, each turning dL/d(its output) into dL/d(its input) and dL/d(its weights).
"""

from __future__ import annotations

import numpy as np

from ..models import build_torch, make_spec
from ..scratch import layers as L
from ..scratch.model import Net
from .base import Lesson, fmt
from .inputs import check_window, read_image

SPEC = ["conv(out=2, k=3)", "relu", "maxpool(k=2)", "flatten", "linear(out=2)"]


def default_image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 2, size=(6, 6)).astype(np.float64)


def autograd(spec, state, x, y):
    """PyTorch's answer: each layer's output gradient and each parameter's gradient."""
    import torch
    import torch.nn.functional as F

    net = build_torch(spec, x.shape[1:]).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    h, outs = torch.from_numpy(x), {}
    for name, module in net.named_children():
        h = module(h)
        h.retain_grad()
        outs[name] = h
    loss = F.cross_entropy(h, torch.from_numpy(y))
    loss.backward()
    return (loss.item(), {k: v.grad.numpy() for k, v in outs.items()},
            {k: p.grad.numpy() for k, p in net.named_parameters()})


def run(image=None, lr: float | None = None, label: int = 1, **_) -> Lesson:
    img = read_image(image) if image else default_image()                  # (H, W)
    check_window(img.shape, 3, 1, 0, what="--image (the tiny CNN's 3x3 conv)")
    check_window((img.shape[0] - 2, img.shape[1] - 2), 2, 2, 0, what="--image (the tiny CNN's 2x2 pool)")
    lr = lr or 0.1
    x = img[None, None]                                                    # (1, 1, H, W)
    y = np.array([label])
    spec = make_spec(SPEC)
    net = Net(spec, x.shape[1:], dtype=np.float64, seed=0)
    for layer in net.layers:                                               # short numbers to read
        for k in layer.params:
            layer.params[k] = np.round(layer.params[k] * 2, 1)
    state = {k: v.copy() for k, v in net.state_dict().items()}

    lesson = Lesson("backprop", "Backpropagation through a tiny CNN")
    lesson.text("The network: " + " -> ".join(str(l) for l in spec) + f" -> softmax cross-entropy; true class {label}.")
    lesson.grids(("input", img), ("conv1 filters", net.layers[0].params["weight"][:, 0]),
                 ("conv1 bias", net.layers[0].params["bias"]))
    lesson.grid("linear1 weight", net.layers[-1].params["weight"])

    outs, h = {}, x
    for layer in net.layers:                                               # forward, keeping every output
        h = outs[layer.name] = layer.forward(h, train=True)
    loss_fn = L.SoftmaxCrossEntropy()
    loss = loss_fn.forward(h, y)
    lesson.text("Forward pass, each layer's output:")
    lesson.grids(*[(name, v[0]) for name, v in outs.items() if name != "flatten1"])
    p = L.softmax(h)[0]
    lesson.text(f"softmax = [{', '.join(fmt(v, 4) for v in p)}], loss = -log p[{label}] = {fmt(loss, 4)}")

    ref_loss, ref_out, ref_param = autograd(spec, state, x, y)
    rows, dout = [], loss_fn.backward()
    lesson.text("Backward pass: dL/dlogits = softmax - onehot(y); then each layer in reverse.")
    grads_out = {net.layers[-1].name: dout}
    for i in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[i]
        g_out = dout
        dout = layer.backward(dout)
        rows.append((f"dL/d({layer.name} output)", g_out, ref_out[layer.name]))
        for k in layer.params:
            rows.append((f"dL/d{layer.name}.{k}", layer.grads[k], ref_param[f"{layer.name}.{k}"]))
        if i > 0:
            grads_out[net.layers[i - 1].name] = dout
    table = []
    for name, ours, ref in rows:
        ours_s = np.squeeze(ours)
        table.append([name, " ".join(fmt(v, 4) for v in np.ravel(ours_s)), " ".join(fmt(v, 4) for v in np.ravel(ref)),
                      f"{np.abs(ours - ref).max():.1e}"])
    lesson.table(["gradient", "NumPy engine", "PyTorch autograd", "max |difference|"], table,
                 "every gradient, flattened")
    lesson.grids(*[(f"dL/d{name}", g[0]) for name, g in grads_out.items()
                   if name in ("conv1", "relu1", "maxpool1")])
    for layer in net.layers:                                               # the step: w -= lr * dw
        for k in layer.params:
            layer.params[k] -= lr * layer.grads[k]
    new_loss = loss_fn.forward(net.forward(x, train=True), y)
    lesson.text(f"Loss {fmt(loss, 6)} (autograd {fmt(ref_loss, 6)}). After one SGD step with learning rate {lr} "
                f"(w = w - {lr} * dL/dw): loss {fmt(new_loss, 6)}.")
    lesson.grids(("new conv1 filters", net.layers[0].params["weight"][:, 0]),
                 ("new linear1 weight", net.layers[-1].params["weight"]))
    return lesson

"""Every NumPy layer against two oracles: PyTorch autograd and finite differences (float64).

Hypothesis draws the shapes, kernel sizes, strides, paddings and a seed for the values;
for each draw the layer's output, dL/d(input) and dL/d(parameters) must agree with
PyTorch's to a relative error below 1e-5, and a sample of them with central differences
of L = sum(output * G) for a random G.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seethrough.errors import ModelError
from seethrough.scratch import layers as L

TOL = 1e-5
SETTINGS = settings(max_examples=12, deadline=None)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def away_from_zero(x):
    """Keep values off ReLU's kink so a finite difference never straddles it."""
    return x + np.sign(x) * 0.05


def check(layer, x, torch_forward, train=False, seed=0, reseed=None):
    """Compare ``layer`` with ``torch_forward(x_t, params_t)`` and with finite differences."""
    rng = np.random.default_rng(seed)
    reseed = reseed or (lambda: None)

    reseed()
    out = layer.forward(x.copy(), train)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)

    xt = torch.tensor(x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    reseed()
    ot = torch_forward(xt, pt)
    assert rel_err(out, ot.detach().numpy()) < TOL
    (ot * torch.from_numpy(g)).sum().backward()
    assert rel_err(dx, xt.grad.numpy()) < TOL
    for k in layer.params:
        assert rel_err(layer.grads[k], pt[k].grad.numpy()) < TOL, k

    def loss():
        reseed()
        return float((layer.forward(x, train) * g).sum())

    eps = 1e-6
    for arr, grad in [(x, dx)] + [(layer.params[k], layer.grads[k]) for k in layer.params]:
        flat_idx = rng.choice(arr.size, size=min(6, arr.size), replace=False)
        num, ana = [], []
        for i in flat_idx:
            pos = np.unravel_index(i, arr.shape)
            old = arr[pos]
            arr[pos] = old + eps
            up = loss()
            arr[pos] = old - eps
            down = loss()
            arr[pos] = old
            num.append((up - down) / (2 * eps))
            ana.append(grad[pos])
        assert rel_err(ana, num) < TOL, (ana, num)


images = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(4, 9), st.integers(4, 9))  # N, C, H, W


@SETTINGS
@given(shape=images, out=st.integers(1, 4), k=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 2), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d(shape, out, k, stride, pad, bias, seed):
    rng = np.random.default_rng(seed)
    layer = L.Conv2d("conv1", shape[1], out, k, stride, pad, bias, rng, np.float64)
    x = rng.standard_normal(shape)
    check(layer, x, lambda xt, p: F.conv2d(xt, p["weight"], p.get("bias"), stride=stride, padding=pad), seed=seed)


@pytest.mark.parametrize("kind", ["max", "avg"])
@SETTINGS
@given(shape=images, k=st.integers(1, 3), stride=st.sampled_from([None, 1, 2, 3]), seed=st.integers(0, 2**16))
def test_pooling(kind, shape, k, stride, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    layer = L.MaxPool2d("maxpool1", k, stride) if kind == "max" else L.AvgPool2d("avgpool1", k, stride)
    torch_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    check(layer, x, lambda xt, p: torch_pool(xt, k, stride or k), seed=seed)


@SETTINGS
@given(shape=images, seed=st.integers(0, 2**16))
def test_gap_relu_flatten(shape, seed):
    x = away_from_zero(np.random.default_rng(seed).standard_normal(shape))
    check(L.GlobalAvgPool("gap1"), x, lambda xt, p: xt.mean((2, 3)), seed=seed)
    check(L.ReLU("relu1"), x, lambda xt, p: F.relu(xt), seed=seed)
    check(L.Flatten("flatten1"), x, lambda xt, p: xt.flatten(1), seed=seed)


@SETTINGS
@given(n=st.integers(1, 5), fin=st.integers(1, 12), fout=st.integers(1, 6), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_linear(n, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    layer = L.Linear("linear1", fin, fout, bias, rng, np.float64)
    check(layer, rng.standard_normal((n, fin)), lambda xt, p: F.linear(xt, p["weight"], p.get("bias")), seed=seed)


@SETTINGS
@given(shape=st.one_of(images, st.tuples(st.integers(3, 6), st.integers(1, 5))), train=st.booleans(),
       seed=st.integers(0, 2**16))
def test_batchnorm(shape, train, seed):
    rng = np.random.default_rng(seed)
    layer = L.BatchNorm("batchnorm1", shape[1], dtype=np.float64)
    layer.params["weight"] = rng.uniform(0.5, 1.5, shape[1])
    layer.params["bias"] = rng.standard_normal(shape[1])
    layer.buffers["running_mean"] = rng.standard_normal(shape[1])
    layer.buffers["running_var"] = rng.uniform(0.5, 2, shape[1])
    x = rng.standard_normal(shape) * 2 + 1
    rm, rv = (torch.tensor(layer.buffers[k].copy()) for k in ("running_mean", "running_var"))
    check(layer, x, lambda xt, p: F.batch_norm(xt, rm, rv, p["weight"], p["bias"], training=train), train=train, seed=seed)
    # The running statistics move as PyTorch's do (the numpy layer ran forward 1 + 2*|sample| times).
    rm0, rv0 = (torch.tensor(layer.buffers[k]) for k in ("running_mean", "running_var"))
    layer.forward(x, train)
    F.batch_norm(torch.tensor(x), rm0, rv0, training=train)
    assert rel_err(layer.buffers["running_mean"], rm0.numpy()) < TOL
    assert rel_err(layer.buffers["running_var"], rv0.numpy()) < TOL


@SETTINGS
@given(shape=images, p=st.sampled_from([0.0, 0.3, 0.5]), seed=st.integers(0, 2**16))
def test_dropout(shape, p, seed):
    layer = L.Dropout("dropout1", p)
    x = np.random.default_rng(seed).standard_normal(shape)

    def reseed():
        layer.rng = np.random.default_rng(seed)

    def torch_dropout(xt, _):  # the same mask as the numpy layer drew, applied by torch
        keep = np.random.default_rng(seed).random(shape) >= p
        return xt * torch.from_numpy(keep / (1 - p)) if p else xt

    check(layer, x, torch_dropout, train=True, seed=seed, reseed=reseed)
    assert np.array_equal(layer.forward(x, False), x)  # evaluation: identity


@SETTINGS
@given(n=st.integers(1, 6), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_softmax_cross_entropy(n, k, seed):
    rng = np.random.default_rng(seed)
    z, y = rng.standard_normal((n, k)) * 3, rng.integers(0, k, n)
    fn = L.SoftmaxCrossEntropy()
    loss, dz = fn.forward(z, y), fn.backward()
    zt = torch.tensor(z, requires_grad=True)
    lt = F.cross_entropy(zt, torch.from_numpy(y))
    lt.backward()
    assert abs(loss - lt.item()) < TOL * abs(lt.item()) + 1e-12
    assert rel_err(dz, zt.grad.numpy()) < TOL
    i = (0, 0)
    zp, zm = z.copy(), z.copy()
    zp[i] += 1e-6
    zm[i] -= 1e-6
    assert abs((fn.forward(zp, y) - fn.forward(zm, y)) / 2e-6 - dz[i]) < 1e-6


@SETTINGS
@given(n=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_sigmoid_binary_cross_entropy(n, seed):
    rng = np.random.default_rng(seed)
    z, y = rng.standard_normal((n, 1)) * 4, rng.integers(0, 2, n)
    fn = L.SigmoidBinaryCrossEntropy()
    loss, dz = fn.forward(z, y), fn.backward()
    zt = torch.tensor(z, requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(zt, torch.tensor(y, dtype=torch.float64).view(-1, 1))
    lt.backward()
    assert abs(loss - lt.item()) < TOL * abs(lt.item()) + 1e-12
    assert rel_err(dz, zt.grad.numpy()) < TOL
    assert np.allclose(L.sigmoid(z), torch.sigmoid(zt).detach().numpy(), rtol=1e-12)


def test_sigmoid_does_not_overflow():
    z = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert L.sigmoid(z).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("size,k,stride,pad,msg", [
    (5, 8, 1, 1, "larger than the padded input"),
    (5, 3, 0, 0, "stride must be at least 1"),
    (5, 3, 1, -1, "padding must be 0 or more"),
])
def test_bad_window_arguments(size, k, stride, pad, msg):
    with pytest.raises(ModelError, match=msg):
        L.out_size(size, k, stride, pad)


def test_conv_refuses_kernel_larger_than_padded_image():
    layer = L.Conv2d("conv1", 1, 1, 5, pad=0, dtype=np.float64)
    with pytest.raises(ModelError, match="5x5 kernel is larger"):
        layer.forward(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("k,stride", [(2, 2), (3, 1), (2, 1)])
def test_maxpool_ties_go_where_pytorch_sends_them(k, stride):
    """Windows full of equal values (zeros after ReLU): the gradient goes to the same input as PyTorch's."""
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.integers(0, 2, (2, 3, 6, 6)).astype(np.float64)
    layer = L.MaxPool2d("maxpool1", k, stride)
    g = rng.standard_normal(layer.forward(x).shape)
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xt, k, stride).backward(torch.from_numpy(g))
    assert np.allclose(layer.backward(g), xt.grad.numpy(), atol=1e-12)

"""Every layer of the NumPy engine, forward and backward written out.

Each layer is a small object with

* ``forward(x, train=False)``: computes the output and keeps what backward needs;
* ``backward(dout)``: takes dL/d(output), returns dL/d(input), and stores
  dL/d(parameter) in ``grads`` under the same keys as ``params``.

Images are (N, C, H, W) like PyTorch, flat inputs (N, F). Parameters use PyTorch's
layout and names (``weight``, ``bias``, ``running_mean`` ...) so a state dict moves
between the engines unchanged. Nothing loops over pixels: convolution and pooling
take every k x k window at once with a strided view (``sliding_window_view``), and
only the k*k kernel offsets are looped over when gradients are summed back.
The arithmetic runs in the dtype of the parameters (float32 or float64).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ModelError


# ---------------------------------------------------------------------- window helpers
def pad_image(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the two spatial axes of (N, C, H, W) by ``pad`` on every side."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def out_size(size: int, k: int, stride: int, pad: int = 0) -> int:
    """Output length of a k-wide window slid with ``stride`` over ``size`` padded by ``pad``."""
    if stride < 1:
        raise ModelError(f"stride must be at least 1, got {stride}")
    if pad < 0:
        raise ModelError(f"padding must be 0 or more, got {pad}")
    if k < 1:
        raise ModelError(f"kernel size must be at least 1, got {k}")
    if k > size + 2 * pad:
        raise ModelError(f"a {k}x{k} kernel is larger than the padded input "
                         f"({size}+2*{pad} = {size + 2 * pad}); use a smaller kernel or more padding")
    return (size + 2 * pad - k) // stride + 1


def windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Every k x k window of (N, C, H, W) as a view (N, C, OH, OW, k, k); no copy."""
    w = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, H-k+1, W-k+1, k, k)
    return w[:, :, ::stride, ::stride]


def offset_view(x: np.ndarray, i: int, j: int, oh: int, ow: int, stride: int) -> np.ndarray:
    """The pixels at offset (i, j) inside every window: x[:, :, i + s*y, j + s*x] as an (N, C, OH, OW) view."""
    return x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]


def add_windows(dwin: np.ndarray, shape: tuple, stride: int) -> np.ndarray:
    """The adjoint of :func:`windows`: sum (N, C, k, k, OH, OW) window gradients into (N, C, H, W).

    A pixel inside several windows receives the sum of their gradients. The loop runs over
    the k*k offsets inside a window, each one a strided slice of the whole batch.
    """
    k, oh, ow = dwin.shape[2], dwin.shape[4], dwin.shape[5]
    dx = np.zeros(shape, dtype=dwin.dtype)
    for i in range(k):
        for j in range(k):
            offset_view(dx, i, j, oh, ow, stride)[...] += dwin[:, :, i, j]
    return dx


# ---------------------------------------------------------------------- layers
class Layer:
    """Base: no parameters; subclasses fill ``params`` (trained) and ``buffers`` (running stats)."""

    kind = "layer"

    def __init__(self, name: str):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2d(Layer):
    """out[n, o] = sum over c, i, j of x_pad[n, c, s*y+i, s*x+j] * weight[o, c, i, j] + bias[o]."""

    kind = "conv"

    def __init__(self, name, in_ch, out_ch, k, stride=1, pad=0, bias=True, rng=None, dtype=np.float32):
        super().__init__(name)
        self.k, self.stride, self.pad = k, stride, pad
        rng = rng or np.random.default_rng(0)
        bound = 1 / np.sqrt(in_ch * k * k)  # PyTorch's default initialisation
        self.params["weight"] = _uniform(rng, bound, (out_ch, in_ch, k, k), dtype)  # (O, C, k, k)
        if bias:
            self.params["bias"] = _uniform(rng, bound, (out_ch,), dtype)

    def forward(self, x, train=False):
        n, c, h, w = x.shape
        k, s = self.k, self.stride
        oh, ow = out_size(h, k, s, self.pad), out_size(w, k, s, self.pad)
        xp = pad_image(x, self.pad)                                  # (N, C, H+2p, W+2p)
        win = windows(xp, k, s)                                      # (N, C, OH, OW, k, k) view
        # im2col: one (C*k*k, N*OH*OW) matrix, one column per output position of the batch
        cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(c * k * k, n * oh * ow)
        weight = self.params["weight"]
        out = weight.reshape(len(weight), -1) @ cols                  # (O, N*OH*OW): one matrix product
        if "bias" in self.params:
            out += self.params["bias"][:, None]
        self._cache = (cols, xp.shape, (n, c, oh, ow))
        return np.ascontiguousarray(out.reshape(-1, n, oh, ow).transpose(1, 0, 2, 3))  # (N, O, OH, OW)

    def backward(self, dout, need_dx=True):
        cols, xp_shape, (n, c, oh, ow) = self._cache
        weight = self.params["weight"]
        o, k = len(weight), self.k
        d2 = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(o, -1)  # (O, N*OH*OW)
        self.grads["weight"] = (d2 @ cols.T).reshape(weight.shape)    # (O, C, k, k)
        if "bias" in self.params:
            self.grads["bias"] = d2.sum(1)
        if not need_dx:
            return None
        dcols = (weight.reshape(o, -1).T @ d2).reshape(c, k, k, n, oh, ow)  # (C*k*k, N*OH*OW) unfolded
        dxp = add_windows(dcols.transpose(3, 0, 1, 2, 4, 5), xp_shape, self.stride)  # (N, C, Hp, Wp)
        p = self.pad
        return dxp[:, :, p:xp_shape[2] - p, p:xp_shape[3] - p] if p else dxp


class MaxPool2d(Layer):
    """out = the largest value of each k x k window; the gradient goes to that value only."""

    kind = "maxpool"

    def __init__(self, name, k=2, stride=None):
        super().__init__(name)
        self.k, self.stride = k, stride or k

    def forward(self, x, train=False):
        k, s = self.k, self.stride
        oh, ow = out_size(x.shape[2], k, s), out_size(x.shape[3], k, s)
        out = offset_view(x, 0, 0, oh, ow, s).copy()                  # (N, C, OH, OW)
        for i in range(k):                                            # the largest over the k*k offsets
            for j in range(k):
                np.maximum(out, offset_view(x, i, j, oh, ow, s), out=out)
        self._cache = (x, out)
        return out

    def backward(self, dout):
        x, out = self._cache
        k, s = self.k, self.stride
        oh, ow = out.shape[2:]
        dx = np.zeros_like(x)
        taken = np.zeros(out.shape, dtype=bool)
        for i in range(k):  # the first offset (row by row) that holds the maximum gets the gradient, as PyTorch
            for j in range(k):
                hit = (offset_view(x, i, j, oh, ow, s) == out) & ~taken
                offset_view(dx, i, j, oh, ow, s)[...] += np.where(hit, dout, 0)
                taken |= hit
        return dx


class AvgPool2d(Layer):
    """out = the mean of each k x k window; each input gets 1/k^2 of the gradient of every window it is in."""

    kind = "avgpool"

    def __init__(self, name, k=2, stride=None):
        super().__init__(name)
        self.k, self.stride = k, stride or k

    def forward(self, x, train=False):
        k, s = self.k, self.stride
        out_size(x.shape[2], k, s), out_size(x.shape[3], k, s)
        self._shape = x.shape
        return windows(x, k, s).mean(axis=(-2, -1))                   # (N, C, OH, OW)

    def backward(self, dout):
        k = self.k
        dwin = np.broadcast_to((dout / (k * k))[:, :, None, None], dout.shape[:2] + (k, k) + dout.shape[2:])
        return add_windows(dwin, self._shape, self.stride)                # (N, C, H, W)


class GlobalAvgPool(Layer):
    """(N, C, H, W) -> (N, C): the mean of each channel."""

    kind = "gap"

    def __init__(self, name):
        super().__init__(name)

    def forward(self, x, train=False):
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        n, c, h, w = self._shape
        return np.broadcast_to((dout / (h * w))[:, :, None, None], self._shape).copy()


class ReLU(Layer):
    """max(0, x); the gradient passes where x > 0."""

    kind = "relu"

    def forward(self, x, train=False):
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self._mask


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order, as PyTorch's ``nn.Flatten``."""

    kind = "flatten"

    def forward(self, x, train=False):
        self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self._shape)


class Linear(Layer):
    """out = x @ weight.T + bias, weight (out, in)."""

    kind = "linear"

    def __init__(self, name, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        super().__init__(name)
        rng = rng or np.random.default_rng(0)
        bound = 1 / np.sqrt(in_features)
        self.params["weight"] = _uniform(rng, bound, (out_features, in_features), dtype)
        if bias:
            self.params["bias"] = _uniform(rng, bound, (out_features,), dtype)

    def forward(self, x, train=False):
        self._x = x                                                   # (N, in)
        out = x @ self.params["weight"].T                             # (N, out)
        if "bias" in self.params:
            out = out + self.params["bias"]
        return out

    def backward(self, dout, need_dx=True):
        self.grads["weight"] = dout.T @ self._x                       # (out, in)
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(0)
        if not need_dx:
            return None
        return dout @ self.params["weight"]                           # (N, in)


class BatchNorm(Layer):
    """Per channel: (x - mean) / sqrt(var + eps) * weight + bias.

    Training uses the batch's mean and (biased) variance and updates the running
    statistics as PyTorch does (unbiased variance, ``momentum`` weight); evaluation
    uses the running statistics. Works on (N, C, H, W) and (N, C).
    """

    kind = "batchnorm"

    def __init__(self, name, channels, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__(name)
        self.eps, self.momentum = eps, momentum
        self.params["weight"] = np.ones(channels, dtype)
        self.params["bias"] = np.zeros(channels, dtype)
        self.buffers["running_mean"] = np.zeros(channels, dtype)
        self.buffers["running_var"] = np.ones(channels, dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), np.int64)

    @staticmethod
    def _axes(x):
        return (0, 2, 3) if x.ndim == 4 else (0,)

    def _per_channel(self, v, ndim):
        return v.reshape((1, -1, 1, 1) if ndim == 4 else (1, -1))

    def forward(self, x, train=False):
        axes = self._axes(x)
        if train:
            mean, var = x.mean(axes), x.var(axes)
            n = x.size // x.shape[1]
            m = self.momentum
            b = self.buffers
            b["running_mean"] = ((1 - m) * b["running_mean"] + m * mean).astype(b["running_mean"].dtype)
            b["running_var"] = ((1 - m) * b["running_var"] + m * var * n / max(n - 1, 1)).astype(b["running_var"].dtype)
            b["num_batches_tracked"] = b["num_batches_tracked"] + 1
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = 1 / np.sqrt(var + self.eps)
        xhat = (x - self._per_channel(mean, x.ndim)) * self._per_channel(inv_std, x.ndim)
        self._cache = (xhat, inv_std, train)
        return xhat * self._per_channel(self.params["weight"], x.ndim) + self._per_channel(self.params["bias"], x.ndim)

    def backward(self, dout):
        xhat, inv_std, train = self._cache
        axes, nd = self._axes(dout), dout.ndim
        self.grads["weight"] = (dout * xhat).sum(axes)
        self.grads["bias"] = dout.sum(axes)
        dxhat = dout * self._per_channel(self.params["weight"], nd)
        if not train:  # fixed statistics: a per-channel affine map
            return dxhat * self._per_channel(inv_std, nd)
        n = dout.size // dout.shape[1]
        # the batch mean and variance depend on x too; their two terms are subtracted
        return (self._per_channel(inv_std, nd) / n) * (
            n * dxhat - self._per_channel(dxhat.sum(axes), nd)
            - xhat * self._per_channel((dxhat * xhat).sum(axes), nd))


class Dropout(Layer):
    """Training: zero each value with probability p and scale the rest by 1/(1-p). Evaluation: identity."""

    kind = "dropout"

    def __init__(self, name, p=0.5, rng=None):
        super().__init__(name)
        self.p = p
        self.rng = rng or np.random.default_rng(0)

    def forward(self, x, train=False):
        if not train or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._mask = (keep / (1 - self.p)).astype(x.dtype)
        return x * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask


# ---------------------------------------------------------------------- losses
def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) scores, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), written so neither branch overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


class SoftmaxCrossEntropy:
    """Mean over the batch of -log softmax(z)[y]; its gradient is (softmax(z) - onehot(y)) / N."""

    def forward(self, z: np.ndarray, y: np.ndarray) -> float:
        shifted = z - z.max(1, keepdims=True)                         # (N, K)
        log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        self._cache = (np.exp(log_p), y)
        return float(-log_p[np.arange(len(y)), y].mean())

    def backward(self) -> np.ndarray:
        p, y = self._cache
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        return d / len(y)


class SigmoidBinaryCrossEntropy:
    """Mean of -(y log a + (1-y) log(1-a)) with a = sigmoid(z); its gradient is (a - y) / N.

    Computed as max(z, 0) - z*y + log(1 + exp(-|z|)), the same number without overflow.
    """

    def forward(self, z: np.ndarray, y: np.ndarray) -> float:
        y = y.reshape(z.shape).astype(z.dtype)
        self._cache = (sigmoid(z), y)
        return float((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean())

    def backward(self) -> np.ndarray:
        a, y = self._cache
        return (a - y) / a.size

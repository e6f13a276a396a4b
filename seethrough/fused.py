"""A fused CPU forward pass for ``TrainedModel.logits``: the same numbers as the eager net, faster.

Built from a spec's ``nn.Sequential`` in eval mode, with no tracing (a few milliseconds):

- the input stays in channels-last memory: ``images.permute(0, 3, 1, 2)`` of uint8 (N, H, W, C)
  images already is, so oneDNN reads it without a copy;
- ``(x - mean) / std`` is folded into the first conv's weights and bias when that conv has no
  padding (exact: no padded zeros to standardise), else it stays one cheap op;
- batch norm is folded into the conv or linear layer before it, also across a max pool when its
  scales are positive (``max(s * a + t) = s * max(a) + t`` for ``s > 0``), and a ReLU after a
  conv runs inside oneDNN's convolution;
- a 2x2 max pool is two element-wise maxima over strided views (about half the time of
  ``max_pool2d`` on channels-last tensors here), and ``flatten`` before a linear layer reads
  the channels-last memory as it lies, with the linear layer's columns permuted to match;
- a batch of at least two chunks of :data:`CHUNK` images is split between worker threads that
  each run PyTorch on one thread and take the next chunk when done (:class:`_Workers`).

:func:`build` returns None for what it does not cover (a GPU, weights other than float32, a
layer it does not know, forward hooks); the caller then runs the eager net. Gradients never flow
through it. ``build(..., dtype=torch.bfloat16)`` runs the same plan in bfloat16.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

_CL = torch.channels_last


def available() -> bool:
    """Whether this PyTorch has the oneDNN fused convolution the plan uses."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class Cache:
    """One model's plan, rebuilt when a weight or the preprocessing changes.

    A change is any parameter or buffer replaced, moved, or edited in place (PyTorch's version
    counter: optimiser steps, ``load_state_dict``, ``copy_`` under ``no_grad``). Writes through
    ``param.data`` bypass that counter and are not seen. The cache holds the tensors it checked,
    so their addresses cannot be reused by new ones while it compares them.
    """

    def __init__(self):
        self.net = self.tensors = self.marks = None
        self.plans: dict = {}                                # dtype -> plan or None

    def get(self, net: nn.Module, preprocess, in_chw, dtype=torch.float32) -> "FusedNet | None":
        """The plan for ``net(preprocess(x))`` in ``dtype``, or None where :func:`build` does not apply."""
        tensors = list(itertools.chain(net.parameters(), net.buffers()))
        marks = [(t.data_ptr(), t._version, t.device, t.dtype) for t in tensors]
        marks.append((tuple(preprocess.mean), tuple(preprocess.std), tuple(in_chw)))
        if not (net is self.net and marks == self.marks and len(tensors) == len(self.tensors)
                and all(a is b for a, b in zip(tensors, self.tensors))):
            self.plans = {}
            self.net, self.tensors, self.marks = net, tensors, marks
        if dtype not in self.plans:
            self.plans[dtype] = build(net, preprocess, in_chw, dtype)
        return self.plans[dtype]


def has_hooks(net: nn.Module) -> bool:
    """Whether any forward hook would run on ``net`` (the fused plan would skip it)."""
    hooks = nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def _bn_affine(bn) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as ``x * scale + shift``, per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    return scale, shift


def pool2(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(x, 2)`` for a channels-last (N, C, H, W) tensor, as two strided maxima."""
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    y = x.permute(0, 2, 3, 1)[:, :2 * h2, :2 * w2].unflatten(1, (h2, 2))   # (N, h2, 2, 2*w2, C)
    rows = torch.maximum(y[:, :, 0], y[:, :, 1]).unflatten(2, (w2, 2))      # (N, h2, w2, 2, C)
    return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)  # (N, C, h2, w2)


class _Conv:
    """Conv (+ folded batch norm) (+ ReLU), one oneDNN call on channels-last tensors."""

    def __init__(self, conv: nn.Conv2d, weight, bias, relu: bool, dtype):
        self.weight = weight.to(dtype).contiguous(memory_format=_CL)
        self.bias = bias.to(dtype).contiguous() if bias is not None else None
        self.args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups,
                     "relu" if relu else "none", [], "")

    def __call__(self, x):                                   # (N, C, H, W) channels-last
        return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *self.args)


class _Linear:
    """Linear (+ folded batch norm) (+ ReLU) as one ``addmm``."""

    def __init__(self, weight, bias, relu: bool, dtype):
        self.weight_t = weight.t().to(dtype).contiguous()    # (in, out)
        self.bias = (bias if bias is not None else torch.zeros(weight.shape[0])).to(dtype)
        self.relu = relu

    def __call__(self, x):                                   # (N, in)
        out = torch.addmm(self.bias, x, self.weight_t)       # (N, out)
        return out.relu_() if self.relu else out


def _nhwc_flatten(x):                                        # (N, C, H, W) -> (N, H*W*C)
    return x.permute(0, 2, 3, 1).flatten(1)


CHUNK = 64  # images per worker task; of 16, 32, 64 and 128, 64 was fastest for seed-cnn at batch 256


class FusedNet:
    """The fused plan: call it with (N, C, H, W) uint8 or float images, get float32 logits."""

    def __init__(self, steps, mean, std, dtype=torch.float32):
        self.steps = steps
        self.mean, self.std = mean, std                      # None when folded into the first conv
        self.dtype = dtype

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        threads = torch.get_num_threads()
        if threads > 1 and len(images) >= 2 * CHUNK and _openmp():
            size = min(CHUNK, -(-len(images) // threads))    # every worker gets a chunk
            chunks = _Workers.get(threads).map(self._run_chunk, images.split(size))
            return torch.cat(list(chunks))                   # (N, n_classes)
        return self._run(images)

    def _run_chunk(self, images):
        with torch.inference_mode():                         # grad modes are per thread
            return self._run(images)

    def _run(self, images):
        x = images.float().contiguous(memory_format=_CL)     # (N, C, H, W); no copy for permuted NHWC
        if self.mean is not None:
            x = (x - self.mean) / self.std
        x = x.to(self.dtype)
        for step in self.steps:
            x = step(x)
        return x.float()                                     # (N, n_classes)


@functools.cache
def _openmp() -> bool:
    return "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()


class _Workers:
    """``n`` threads that each run PyTorch on one thread, taking chunks of a batch in turn.

    PyTorch's own n threads split every op and wait for each other at its end (OpenMP), so one
    thread the OS gives to another process stalls them all (on a busy machine, several times
    slower: docs/benchmarks.md). Here each thread runs whole chunks, and one that falls behind
    takes fewer. OpenMP's and MKL's thread counts are per thread, so the
    workers' count of 1 leaves the caller's alone; ``torch.set_num_threads`` also sets the count
    that threads started later begin with, which is put back right after.
    """

    _lock = threading.Lock()
    _pool = (None, None)                                     # ((threads, pid), ThreadPoolExecutor)

    @classmethod
    def get(cls, threads: int) -> ThreadPoolExecutor:
        with cls._lock:
            key = (threads, os.getpid())                     # a forked child has none of the threads
            if cls._pool[0] != key:
                if cls._pool[0] is not None and cls._pool[0][1] == key[1]:
                    cls._pool[1].shutdown(wait=False)
                started = threading.Barrier(threads, timeout=60)
                pool = ThreadPoolExecutor(threads, thread_name_prefix="seethrough-fused",
                                          initializer=cls._one_thread)
                list(pool.map(lambda _: started.wait(), range(threads)))  # start them all now
                torch.set_num_threads(threads)               # the default for later threads, back
                cls._pool = (key, pool)
            return cls._pool[1]

    @staticmethod
    def _one_thread():
        torch.get_num_threads()                              # PyTorch sets a thread's count on first use
        torch.set_num_threads(1)


def build(net: nn.Module, preprocess, in_chw, dtype=torch.float32) -> FusedNet | None:
    """A :class:`FusedNet` equal to ``net(preprocess(x))`` in eval mode, or None where it does not apply.

    ``dtype=torch.bfloat16`` folds in float32 as usual, then stores the weights and runs the layers
    in bfloat16 (oneDNN's AMX kernels where the CPU has them); the logits come back as float32.
    """
    params = list(itertools.chain(net.parameters(), net.buffers()))
    if (not available() or not isinstance(net, nn.Sequential) or has_hooks(net)
            or any(m.training or (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is None)
                   for m in net.modules())
            or any(t.device.type != "cpu" or (t.is_floating_point() and t.dtype != torch.float32) for t in params)):
        return None
    mods = [m for m in net.children() if not isinstance(m, nn.Dropout)]
    shapes = _shapes(mods, in_chw)
    mean = torch.tensor(preprocess.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std, dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        first = mods[0] if mods else None
        fold_input = isinstance(first, nn.Conv2d) and tuple(first.padding) == (0, 0) and first.padding_mode == "zeros"
        steps, i = [], 0
        while i < len(mods):
            step, i = _step(mods, i, shapes, (mean, std) if fold_input and i == 0 else None, dtype)
            if step is None:
                return None
            steps.append(step)
    return FusedNet(steps, None if fold_input else mean, None if fold_input else std, dtype)


def _shapes(mods, in_chw) -> list[tuple]:
    """Each module's input shape, without the batch axis."""
    x = torch.zeros(1, *in_chw)
    shapes = []
    with torch.no_grad():
        for m in mods:
            shapes.append(tuple(x.shape[1:]))
            x = m(x)                                     # eval mode: changes nothing
    return shapes


def _is(mods, i, kind) -> bool:
    return i < len(mods) and isinstance(mods[i], kind)


def _step(mods, i, shapes, standardise, dtype=torch.float32):
    """The step that starts at ``mods[i]`` and the index after what it absorbed; (None, i) if unknown."""
    m = mods[i]
    if isinstance(m, nn.Conv2d):
        return _conv_step(mods, i, standardise, dtype)
    if isinstance(m, nn.MaxPool2d):
        if m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) and m.padding in (0, (0, 0)) \
                and m.dilation in (1, (1, 1)) and not m.ceil_mode:
            return pool2, i + 1
        return (lambda x: F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)), i + 1
    if isinstance(m, nn.AvgPool2d):
        return (lambda x: F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                       m.count_include_pad, m.divisor_override)), i + 1
    if isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[0], nn.AdaptiveAvgPool2d) \
            and m[0].output_size in (1, (1, 1)) and isinstance(m[1], nn.Flatten):   # "gap"
        return (lambda x: x.mean((2, 3))), i + 1
    if isinstance(m, nn.ReLU):
        return torch.relu, i + 1
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        scale, shift = _bn_affine(m)
        view = (1, -1, 1, 1) if isinstance(m, nn.BatchNorm2d) else (1, -1)
        scale, shift = scale.view(view).to(dtype), shift.view(view).to(dtype)
        return (lambda x: torch.addcmul(shift, x, scale)), i + 1
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        if len(shapes[i]) == 3 and _is(mods, i + 1, nn.Linear):
            return _linear_step(mods, i + 1, shapes[i], dtype), i + 2 + _is(mods, i + 2, nn.ReLU)  # + its ReLU
        return (lambda x: x.flatten(1)), i + 1
    if isinstance(m, nn.Linear):
        return _linear_step(mods, i, None, dtype), i + 1 + _is(mods, i + 1, nn.ReLU)
    return None, i


def _conv_step(mods, i, standardise, dtype):
    conv = mods[i]
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        return None, i
    weight = conv.weight.detach().float()                   # (O, C, kh, kw)
    bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(len(weight))
    if standardise is not None:                             # conv((x - mean) / std), no padding
        mean, std = standardise
        bias = bias - (weight * (mean / std)).sum((1, 2, 3))
        weight = weight / std
    j, pool = i + 1, None
    if _is(mods, j, nn.MaxPool2d) and _is(mods, j + 1, nn.BatchNorm2d) and bool((_bn_affine(mods[j + 1])[0] > 0).all()):
        pool, j = mods[j], j + 1                             # conv-pool-bn: the bn moves before the pool
    if _is(mods, j, nn.BatchNorm2d):
        scale, shift = _bn_affine(mods[j])
        weight, bias, j = weight * scale.view(-1, 1, 1, 1), bias * scale + shift, j + 1
    relu = _is(mods, j, nn.ReLU)
    step = _Conv(conv, weight, bias, relu, dtype)
    j += relu
    if pool is None:
        return step, j
    pool_step, _ = _step([pool], 0, None, None, dtype)
    return (lambda x: pool_step(step(x))), j


def _linear_step(mods, i, flat_chw, dtype):
    lin = mods[i]
    weight = lin.weight.detach().float()                    # (out, in)
    bias = lin.bias.detach().float() if lin.bias is not None else None
    if flat_chw is not None:                                # columns in (H, W, C) order, for _nhwc_flatten
        c, h, w = flat_chw
        weight = weight.view(-1, c, h, w).permute(0, 2, 3, 1).reshape(len(weight), -1)
    relu = _is(mods, i + 1, nn.ReLU)
    step = _Linear(weight, bias, relu, dtype)
    if flat_chw is None:
        return step
    return lambda x: step(_nhwc_flatten(x))

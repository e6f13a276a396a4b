"""SGD (with momentum, Nesterov and weight decay), Adam and AdamW, as PyTorch defines them.

An optimiser holds a :class:`~seethrough.scratch.model.Net` and, after ``net.backward``,
``step()`` moves every parameter against its gradient. ``lr`` may be changed between
steps (learning-rate schedules).
"""

from __future__ import annotations

import numpy as np

from ..errors import SeethroughError


class SGD:
    """g = grad + wd * p;  v = momentum * v + g;  p -= lr * (g + momentum * v if nesterov else v)."""

    def __init__(self, net, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        self.net, self.lr, self.momentum, self.wd, self.nesterov = net, lr, momentum, weight_decay, nesterov
        self.velocity: dict[str, np.ndarray] = {}

    def step(self):
        for key, layer, k in self.net.parameters():
            p, g = layer.params[k], layer.grads[k]
            if self.wd:
                g = g + self.wd * p
            if self.momentum:
                v = self.velocity.get(key)
                v = g.copy() if v is None else self.momentum * v + g  # the first step starts v at g
                self.velocity[key] = v
                g = g + self.momentum * v if self.nesterov else v
            p -= (self.lr * g).astype(p.dtype)


class Adam:
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps).

    ``decoupled=True`` is AdamW: the weight decay shrinks p directly (p *= 1 - lr*wd)
    instead of being added to the gradient.
    """

    def __init__(self, net, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        self.net, self.lr, self.betas, self.eps = net, lr, betas, eps
        self.wd, self.decoupled = weight_decay, decoupled
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for key, layer, k in self.net.parameters():
            p, g = layer.params[k], layer.grads[k]
            if self.wd and self.decoupled:
                p *= 1 - self.lr * self.wd
            elif self.wd:
                g = g + self.wd * p
            m = self.m[key] = b1 * self.m.get(key, 0) + (1 - b1) * g
            v = self.v[key] = b2 * self.v.get(key, 0) + (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype)


def make_optimizer(net, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """The optimiser the training options name; the same choices as the PyTorch loop."""
    if name == "sgd":
        return SGD(net, lr, momentum, weight_decay, nesterov=momentum > 0)
    if name in ("adam", "adamw"):
        return Adam(net, lr, weight_decay=weight_decay, decoupled=name == "adamw")
    raise SeethroughError(f"--optimizer must be sgd, adam or adamw, got {name!r}")

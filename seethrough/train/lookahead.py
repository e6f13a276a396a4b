"""Lookahead: every few steps the weights step back toward a slow average of themselves.

Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps forward, 1 step back" (2019,
arXiv 1907.08610), in the form airbench uses it (Jordan 2024, arXiv 2404.00498): the fast
weights are the ones SGD updates; every ``every`` steps the slow copy moves toward them,
``slow <- decay * slow + (1 - decay) * fast``, and the fast weights restart from the slow
copy. ``decay`` grows as ``0.95**5 * (step / total)**3``: near 0 early on (the slow copy
follows SGD), about 0.77 at the end (an average over the last few hundred steps). Batch-norm
running statistics are averaged with the weights. Training ends on the slow weights.
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    """The slow copy of ``net``'s floating-point state (weights and batch-norm statistics)."""

    def __init__(self, net: nn.Module, total_steps: int, every: int = 5):
        self.total_steps, self.every = max(1, total_steps), every
        self.slow = {k: v.detach().clone() for k, v in net.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        return 0.95 ** self.every * (step / self.total_steps) ** 3

    @torch.no_grad()
    def step(self, net: nn.Module, step: int) -> None:
        """After optimizer step number ``step`` (counted from 1): every ``every`` steps, average and restart."""
        if step % self.every:
            return
        decay, state = self.decay(step), net.state_dict()
        for k, slow in self.slow.items():
            slow.lerp_(state[k], 1 - decay)
            state[k].copy_(slow)

    @torch.no_grad()
    def finish(self, net: nn.Module) -> None:
        """Leave ``net`` on the slow weights."""
        state = net.state_dict()
        for k, slow in self.slow.items():
            state[k].copy_(slow)

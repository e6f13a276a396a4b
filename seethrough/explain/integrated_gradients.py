"""Integrated gradients.

M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
arXiv:1703.01365.

The gradient of the target score is averaged along the straight line from a baseline
x0 to the image x (``steps`` points, the midpoint rule) and multiplied by (x - x0).
The baseline is 0 in the model's prepared input, which is the training data's mean
colour. Summed over every pixel the attributions approach score(x) - score(x0)
(completeness), the check the tests make. The map sums the channels: signed.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from .base import Explainer


class IntegratedGradients(Explainer):
    name = "integrated_gradients"
    paper = "Sundararajan et al. 2017, arXiv:1703.01365"
    signed = True

    def check_options(self, steps: int = 32):
        if steps < 1:
            raise ModelError(f"integrated_gradients: steps must be at least 1, got {steps}")
        return {"steps": int(steps)}

    def attributions(self, x, target) -> torch.Tensor:
        """Per channel: (B, C, H, W)."""
        n = self.options["steps"]
        alphas = (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n   # midpoints in (0, 1)
        baseline = torch.zeros_like(x)
        total = torch.zeros_like(x)
        step = self.chunk(len(x))
        for s in range(0, n, step):
            a = alphas[s:s + step].view(-1, 1, 1, 1, 1)                          # (k, 1, 1, 1, 1)
            path = (baseline + a * (x - baseline)[None]).flatten(0, 1)          # (k*B, C, H, W)
            g = self.input_gradient(path, target.repeat(len(a)))
            total += g.view(len(a), *x.shape).sum(0)
        return (x - baseline) * total / n

    def attribute(self, x, target):
        return self.attributions(x, target).sum(1)  # (B, H, W)

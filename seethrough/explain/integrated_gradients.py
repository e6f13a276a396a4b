"""Integrated gradients, with the number of steps chosen to meet completeness.

M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
arXiv:1703.01365.

Conventions (the test compares them with Captum's ``IntegratedGradients`` with
``method="riemann_middle"``):

- target: the target class's logit f (with two classes, the logit difference);
- baseline: ``baseline="mean"`` (default) is the training data's mean colour (0 in the
  standardised input), ``"black"`` the all-zero pixels;
- path: the straight line from the baseline x0 to the image x, ``steps`` points at the
  midpoints alpha = (i + 0.5) / steps;
- map: (x - x0) times the mean gradient along the path, summed over the channels;
  signed. The product is the same whether gradient and difference are taken in pixels
  or in the standardised input (the std cancels), so there is no ``space`` option.

Completeness: summed over the pixels the attributions approach f(x) - f(x0). The gap,
the convergence delta, is recorded per image in ``diagnostics``. With ``steps=None``
(the default) the steps start at 32 and double, image by image, until
|delta| <= ``tolerance`` x |f(x) - f(x0)| (1 %) or ``max_steps`` (512) is reached.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from .base import Explainer, run_net

BASELINES = ("mean", "black")


class IntegratedGradients(Explainer):
    name = "integrated_gradients"
    paper = "Sundararajan et al. 2017, arXiv:1703.01365"
    signed = True

    def check_options(self, steps: int | None = None, baseline: str = "mean", tolerance: float = 0.01,
                      max_steps: int = 512, first_steps: int = 32):
        if steps is not None and steps < 1:
            raise ModelError(f"integrated_gradients: steps must be at least 1, got {steps}")
        if baseline not in BASELINES:
            raise ModelError(f"integrated_gradients: baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
        if not tolerance > 0 or max_steps < 1 or first_steps < 1:
            raise ModelError("integrated_gradients: tolerance must be > 0, max_steps and first_steps >= 1")
        return {"steps": None if steps is None else int(steps), "baseline": baseline,
                "tolerance": float(tolerance), "max_steps": int(max_steps), "first_steps": int(first_steps)}

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.options["baseline"] == "black":  # pixel 0 in the standardised input: -mean / std
            mean = torch.tensor(self.model.preprocess.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            return (-mean / self.pixel_std(x)).expand_as(x).clone()
        return torch.zeros_like(x)

    def attributions(self, x, target, steps: int | None = None) -> torch.Tensor:
        """Per channel: (B, C, H, W), with ``steps`` points (the option's, 32 when it is None)."""
        n = steps or self.options["steps"] or self.options["first_steps"]
        alphas = (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n   # midpoints in (0, 1)
        baseline = self.baseline_for(x)
        total = torch.zeros_like(x)
        step = self.chunk(len(x))
        for s in range(0, n, step):
            a = alphas[s:s + step].view(-1, 1, 1, 1, 1)                          # (k, 1, 1, 1, 1)
            path = (baseline + a * (x - baseline)[None]).flatten(0, 1)          # (k*B, C, H, W)
            g = self.input_gradient(path, target.repeat(len(a)))
            total += g.view(len(a), *x.shape).sum(0)
        return (x - baseline) * total / n

    @torch.no_grad()
    def gap(self, x, target) -> torch.Tensor:
        """f(x) - f(x0) per image (B,): what the attributions should sum to."""
        return self.pick(run_net(self.net, x), target) - self.pick(run_net(self.net, self.baseline_for(x)), target)

    def attribute(self, x, target):
        o = self.options
        gap = self.gap(x, target)
        out = torch.empty_like(x)
        steps = torch.zeros(len(x), dtype=torch.long)
        delta = torch.zeros(len(x), dtype=x.dtype)
        todo = torch.arange(len(x))
        n = o["steps"] or o["first_steps"]
        while len(todo):
            a = self.attributions(x[todo], target[todo], n)                     # (b, C, H, W)
            d = (a.sum((1, 2, 3)) - gap[todo]).detach()
            out[todo], steps[todo], delta[todo] = a, n, d.cpu()
            done = (d.abs() <= o["tolerance"] * gap[todo].abs()).cpu()
            if o["steps"] is not None or n >= o["max_steps"]:
                break
            todo = todo[~done]
            n = min(2 * n, o["max_steps"])
        for i in range(len(x)):
            g = float(gap[i])
            self.diagnostics.append({"steps": int(steps[i]), "delta": float(delta[i]), "gap": g,
                                     "relative_delta": abs(float(delta[i])) / abs(g) if g else float(delta[i] != 0) * float("inf")})
        return out.sum(1)  # (B, H, W)

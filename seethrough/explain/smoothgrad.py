"""SmoothGrad: saliency averaged over noisy copies of the image.

D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, "SmoothGrad: removing noise by
adding noise", ICML Workshop on Visualization for Deep Learning 2017, arXiv:1706.03825.

Each image is copied ``samples`` times, Gaussian noise with standard deviation
``noise`` x (max - min of the prepared image) is added, and the saliency maps of the
copies are averaged. Copy number s gets the noise pattern drawn from (``seed``, s), so a
map is repeatable and does not depend on how the images were batched.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from .base import Explainer
from .saliency import saliency_map


class SmoothGrad(Explainer):
    name = "smoothgrad"
    paper = "Smilkov et al. 2017, arXiv:1706.03825"

    def check_options(self, samples: int = 25, noise: float = 0.15, seed: int = 0):
        if samples < 1 or not noise >= 0:
            raise ModelError(f"smoothgrad: samples must be >= 1 and noise >= 0, got {samples}, {noise}")
        return {"samples": int(samples), "noise": float(noise), "seed": int(seed)}

    def noise_for(self, sample: int, shape, device) -> torch.Tensor:
        """The noise pattern of copy ``sample``: fixed by (seed, sample), whatever the batching."""
        gen = torch.Generator().manual_seed(self.options["seed"] * 1_000_003 + sample)
        return torch.randn(shape, generator=gen).to(device)

    def attribute(self, x, target):
        n = self.options["samples"]
        total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device, dtype=x.dtype)  # (B, H, W)
        spread = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        step = self.chunk(len(x))
        for s in range(0, n, step):  # `k` noisy copies of the whole batch at a time
            k = min(step, n - s)
            noise = torch.stack([self.noise_for(s + i, x.shape[1:], x.device) for i in range(k)])  # (k, C, H, W)
            noisy = x[None] + noise[:, None].to(x.dtype) * self.options["noise"] * spread[None]  # (k, B, C, H, W)
            maps = saliency_map(self.input_gradient(noisy.flatten(0, 1), target.repeat(k)))  # (k*B, H, W)
            total += maps.view(k, *total.shape).sum(0)
        return total / n

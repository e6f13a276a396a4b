"""SmoothGrad: saliency averaged over noisy copies of the image.

D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, "SmoothGrad: removing noise by
adding noise", ICML Workshop on Visualization for Deep Learning 2017, arXiv:1706.03825.

Conventions (the test compares them with Captum's ``NoiseTunnel(Saliency)``,
``nt_type="smoothgrad"``, up to the noise of the samples):

- target: as saliency (the target's logit; with two classes the logit difference);
- noise: each image is copied ``samples`` times and Gaussian noise with standard
  deviation ``noise`` x (max - min of the image) is added, in the space of the gradient:
  pixels (0..255, the default) or the standardised input (``space="standardised"``);
- map: the absolute gradient averaged over the copies, then the largest over the
  channels of each pixel; unsigned.

Copy number s gets the noise pattern drawn from (``seed``, s) by its own generator, so a
map is repeatable, does not depend on how the images were batched, and leaves the
global random state alone.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from .base import Explainer, check_space


class SmoothGrad(Explainer):
    name = "smoothgrad"
    paper = "Smilkov et al. 2017, arXiv:1706.03825"

    def check_options(self, samples: int = 25, noise: float = 0.15, seed: int = 0, space: str = "pixels"):
        if samples < 1 or not noise >= 0:
            raise ModelError(f"smoothgrad: samples must be >= 1 and noise >= 0, got {samples}, {noise}")
        return {"samples": int(samples), "noise": float(noise), "seed": int(seed),
                "space": check_space(self.name, space)}

    def noise_for(self, sample: int, shape, device) -> torch.Tensor:
        """The noise pattern of copy ``sample``: fixed by (seed, sample), whatever the batching."""
        gen = torch.Generator().manual_seed(self.options["seed"] * 1_000_003 + sample)
        return torch.randn(shape, generator=gen).to(device)

    def attribute(self, x, target):
        n, space = self.options["samples"], self.options["space"]
        std = self.pixel_std(x) if space == "pixels" else torch.ones_like(self.pixel_std(x))  # (1, C, 1, 1)
        seen = x * std                                                   # the image in the noise's space
        spread = (seen.flatten(1).amax(1) - seen.flatten(1).amin(1)).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        total = torch.zeros_like(x)                                      # (B, C, H, W)
        step = self.chunk(len(x))
        for s in range(0, n, step):  # `k` noisy copies of the whole batch at a time
            k = min(step, n - s)
            noise = torch.stack([self.noise_for(s + i, x.shape[1:], x.device) for i in range(k)])  # (k, C, H, W)
            noisy = x[None] + noise[:, None].to(x.dtype) * self.options["noise"] * spread[None] / std[None]
            grad = self.in_space(self.input_gradient(noisy.flatten(0, 1), target.repeat(k)), space)
            total += grad.abs().view(k, *x.shape).sum(0)
        return (total / n).amax(1)                                       # (B, H, W)

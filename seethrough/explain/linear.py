"""Logistic regression read directly: a class's weight map and weight x input.

For a model that is one linear layer on the pixels (``flatten``, ``linear``) the score
of class k is w_k . x + b_k, so its weights reshaped to the image show which pixels
vote for the class (positive) or against it (negative): the pictures of the classic
articles, e.g. the CS231n notes on linear classification (Karpathy, Stanford 2015).
Weight x input splits the score into one term per pixel, w_k * x, which sum, with the
bias, exactly to the score. Both maps sum the channels and are signed.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from ..models import is_linear
from .base import Explainer


class _Linear(Explainer):
    signed = True

    @classmethod
    def check_model(cls, model):
        if not is_linear(model.spec):
            kinds = ", ".join(l.kind for l in model.spec)
            raise ModelError(f"{cls.name} needs a logistic-regression model (flatten, linear), "
                             f"not ({kinds}); try --method saliency or integrated_gradients")

    def weights(self, target) -> torch.Tensor:
        lin = self.net.get_submodule(self.model.spec[1].name)
        c, h, w = self.model.in_chw
        return lin.weight.detach()[target].view(-1, c, h, w)  # (B, C, H, W)


class WeightMap(_Linear):
    name = "weight_map"
    paper = "linear classifier weights as templates (CS231n notes, Karpathy 2015)"

    def attribute(self, x, target):
        return self.weights(target).sum(1)  # (B, H, W)


class WeightXInput(_Linear):
    name = "weight_x_input"
    paper = "linear contribution w * x (e.g. Shrikumar et al. 2017, arXiv:1704.02685)"

    def attribute(self, x, target):
        return (self.weights(target) * x).sum(1)  # (B, H, W)

"""Logistic regression read directly: a class's weight map and weight x input.

For a model that is one linear layer on the pixels (``flatten``, ``linear``) the score
of class k is w_k . x + b_k, so its weights reshaped to the image show which pixels
vote for the class (positive) or against it (negative): the pictures of the classic
articles, e.g. the CS231n notes on linear classification (Karpathy, Stanford 2015).
Weight x input splits the score into one term per pixel, w_k * x, which sum, with the
bias, exactly to the score.

Conventions (the test compares them with Captum: the weight map with ``Saliency(abs=False)``,
weight x input with ``InputXGradient`` on the standardised input):

- target: the target class's logit; with two classes the difference of the two logits,
  so a model with logits [0, z] explains its first class with the negated map;
- weight map: the gradient of that score, with respect to the pixels (w / std, the
  default) or the standardised input (``space="standardised"``: w itself), summed over
  the channels; signed;
- weight x input: w times the standardised input, summed over the channels; signed. It
  is the same as the pixel gradient times the pixel's difference from the training
  mean colour, i.e. integrated gradients from the mean-colour baseline.
"""

from __future__ import annotations

import torch

from ..errors import ModelError
from ..models import is_linear
from .base import Explainer, check_space


class _Linear(Explainer):
    signed = True

    @classmethod
    def check_model(cls, model):
        if not is_linear(model.spec):
            kinds = ", ".join(l.kind for l in model.spec)
            raise ModelError(f"{cls.name} needs a logistic-regression model (flatten, linear), "
                             f"not ({kinds}); try --method saliency or integrated_gradients")

    def weights(self, target) -> torch.Tensor:
        """The explained score's weights (B, C, H, W) on the standardised input."""
        weight = self.net.get_submodule(self.model.spec[1].name).weight.detach()  # (K, C*H*W)
        c, h, w = self.model.in_chw
        own = weight[target]
        if len(weight) == 2:
            own = own - weight[1 - target]
        return own.view(-1, c, h, w)


class WeightMap(_Linear):
    name = "weight_map"
    paper = "linear classifier weights as templates (CS231n notes, Karpathy 2015)"

    def check_options(self, space: str = "pixels"):
        return {"space": check_space(self.name, space)}

    def attribute(self, x, target):
        return self.in_space(self.weights(target), self.options["space"]).sum(1)  # (B, H, W)


class WeightXInput(_Linear):
    name = "weight_x_input"
    paper = "linear contribution w * x (e.g. Shrikumar et al. 2017, arXiv:1704.02685)"

    def attribute(self, x, target):
        return (self.weights(target) * x).sum(1)  # (B, H, W)

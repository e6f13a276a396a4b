"""Vanilla gradient saliency.

K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps", ICLR Workshop 2014, arXiv:1312.6034.

Conventions (the test compares them with Captum's ``Saliency(abs=True)``):

- target: the target class's logit (with two classes, the logit difference; see
  :class:`~seethrough.explain.base.Explainer`), the predicted class by default;
- gradient: with respect to the pixels (0..255) by default, ``space="standardised"``
  for the model's standardised input (the pixel gradient times the channel's std);
- map: the largest absolute gradient over the channels of each pixel, unsigned.
"""

from __future__ import annotations

import torch

from .base import Explainer, check_space


def saliency_map(grad: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) input gradient -> (B, H, W): max over channels of |grad|."""
    return grad.abs().amax(1)


class Saliency(Explainer):
    name = "saliency"
    paper = "Simonyan et al. 2014, arXiv:1312.6034"
    own_prediction = True

    def check_options(self, space: str = "pixels"):
        return {"space": check_space(self.name, space)}

    def attribute(self, x, target):
        return saliency_map(self.in_space(self.input_gradient(x, target), self.options["space"]))  # (B, H, W)

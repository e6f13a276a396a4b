"""Vanilla gradient saliency.

K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps", ICLR Workshop 2014, arXiv:1312.6034.

The map is the largest absolute gradient of the target class's score over the
channels of each pixel: how much a small change of that pixel moves the score.
"""

from __future__ import annotations

import torch

from .base import Explainer


def saliency_map(grad: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) input gradient -> (B, H, W): max over channels of |grad|."""
    return grad.abs().amax(1)


class Saliency(Explainer):
    name = "saliency"
    paper = "Simonyan et al. 2014, arXiv:1312.6034"
    own_prediction = True

    def attribute(self, x, target):
        return saliency_map(self.input_gradient(x, target))  # (B, H, W)

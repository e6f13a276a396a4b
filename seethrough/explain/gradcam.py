"""Grad-CAM: where a conv layer's evidence for the target class lies.

R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
Explanations from Deep Networks via Gradient-based Localization", ICCV 2017, arXiv:1610.02391.

Conventions (the test compares them with Captum's ``LayerGradCam`` followed by
``LayerAttribution.interpolate(..., "bilinear")``):

- target: the target class's logit y (with two classes, the logit difference);
- layer: the last conv layer unless ``layer=`` names another layer with a spatial output;
- map: with A the layer's maps (K, h, w), each map's weight is the spatial mean of
  dy/dA_k; the map is ReLU(sum_k weight_k A_k), scaled bilinearly (``align_corners=False``)
  up to the input's height and width; unsigned (no gradient w.r.t. pixels is involved).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import has_conv
from .base import Explainer, run_net


def gradcam_from(acts: torch.Tensor, grads: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Layer maps and their gradients (B, K, h, w) -> Grad-CAM (B, H, W) at ``size``."""
    weights = grads.mean((2, 3), keepdim=True)              # (B, K, 1, 1)
    cam = F.relu((weights * acts).sum(1, keepdim=True))     # (B, 1, h, w)
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
    return cam[:, 0]                                        # (B, H, W)


class GradCAM(Explainer):
    name = "gradcam"
    paper = "Selvaraju et al. 2017, arXiv:1610.02391"
    uses_layer = True
    own_prediction = True

    @classmethod
    def check_model(cls, model):
        from ..errors import ModelError

        if not has_conv(model.spec):
            raise ModelError(f"gradcam needs a conv layer and this model ({model.meta.get('model', 'custom')}) "
                             "has none; try --method saliency")

    def attribute(self, x, target):
        with self.hooked(self.layer):
            x = x.detach().requires_grad_(True)  # so the layer's output is on the graph in any model
            logits = run_net(self.net, x)
            score = self.pick(logits, logits.argmax(1) if target is None else target).sum()
            acts = self.activations[self.layer]                 # (B, K, h, w)
            torch.autograd.grad(score, acts)                    # fills self.gradients through the hook
            grads = self.gradients[self.layer]                  # (B, K, h, w)
            return gradcam_from(acts.detach(), grads, tuple(x.shape[2:]))

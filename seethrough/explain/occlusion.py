"""Occlusion: how much the target's probability drops when a patch is hidden.

M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks",
ECCV 2014, arXiv:1311.2901.

Conventions (the test compares them with Captum's ``Occlusion`` on the softmax):

- target: the target class's probability (softmax of the logits);
- baseline: a ``patch`` x ``patch`` square slides over the image by ``stride``; under it
  every channel is set to the training data's mean colour (0 in the standardised input);
- map: a pixel's value is the mean drop of the probability, p(image) - p(occluded),
  over the patches that cover it. Signed: negative where hiding the pixel raises the
  probability, so it is drawn with a diverging colour map centred at 0.

The default patch is an eighth of the shorter side and the stride half the patch; the
last row and column of patches are moved in so that every pixel is covered (Captum
stops at the last whole stride, so the two agree when (side - patch) is a multiple of
the stride).

:meth:`Occlusion.maps_of_nets` explains several variants of the network at once (the
randomization check's copies): each occluded batch is made once and the layers the
variants share run once.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ModelError
from .base import Explainer, as_images, net_dtype, shared_forward


def positions(size: int, patch: int, stride: int) -> list[int]:
    """Patch starts along one side, the last flush with the edge."""
    starts = list(range(0, max(1, size - patch + 1), stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


class Occlusion(Explainer):
    name = "occlusion"
    paper = "Zeiler & Fergus 2014, arXiv:1311.2901"
    signed = True

    def check_options(self, patch: int | None = None, stride: int | None = None):
        _, h, w = self.model.in_chw
        patch = patch or max(1, round(min(h, w) / 8))
        stride = stride or max(1, patch // 2)
        if not 1 <= patch <= min(h, w) or stride < 1:
            raise ModelError(f"occlusion: patch must be in 1..{min(h, w)} and stride >= 1, got {patch}, {stride}")
        return {"patch": int(patch), "stride": int(stride)}

    def attribute(self, x, target):
        return self.occlusion_maps([self.net], x, target)[0]                # (B, H, W)

    def maps_of_nets(self, nets, images, target) -> list[np.ndarray]:
        """float32 (N, H, W) maps of ``images`` for each of ``nets`` (variants of this model's
        network, e.g. randomized copies) and the given ``target`` per image.

        The occluded copies are made once for all nets, and the layers the nets share
        run once (:func:`~seethrough.explain.base.shared_forward`).
        """
        batch, _ = as_images(self.model, images)
        t = torch.tensor(self.resolve_target(target, len(batch)))
        x = self.model.prepare(batch).to(net_dtype(self.net))                  # (N, C, H, W)
        for net in nets:
            net.eval()
        step = min(self.batch_size, self.chunk())
        parts = [self.occlusion_maps(nets, x[i:i + step], t[i:i + step].to(x.device)) for i in range(0, len(x), step)]
        return [torch.cat(maps).float().cpu().numpy() for maps in zip(*parts)]

    @torch.no_grad()
    def occlusion_maps(self, nets, x, target) -> list[torch.Tensor]:
        """Prepared x (B, C, H, W), target (B,) -> one (B, H, W) map per net."""
        b, c, h, w = x.shape
        p, s = self.options["patch"], self.options["stride"]
        boxes = [(i, j) for i in positions(h, p, s) for j in positions(w, p, s)]
        rows = torch.arange(len(x), device=x.device)
        base = [out.softmax(1)[rows, target] for out in shared_forward(nets, x)]  # per net (B,)
        drops = [torch.zeros(b, h, w, device=x.device) for _ in nets]
        count = torch.zeros(h, w, device=x.device)
        for i, j in boxes:
            count[i:i + p, j:j + p] += 1
        step = self.chunk(b)
        for k in range(0, len(boxes), step):
            part = boxes[k:k + step]
            hidden = x.repeat(len(part), 1, 1, 1)                         # (P*B, C, H, W)
            for n, (i, j) in enumerate(part):
                hidden[n * b:(n + 1) * b, :, i:i + p, j:j + p] = 0
            picked = torch.arange(len(hidden), device=x.device), target.repeat(len(part))
            for drop, before, out in zip(drops, base, shared_forward(nets, hidden)):
                d = before.repeat(len(part)) - out.softmax(1)[picked]     # (P*B,)
                for n, (i, j) in enumerate(part):
                    drop[:, i:i + p, j:j + p] += d[n * b:(n + 1) * b, None, None]
        return [drop / count for drop in drops]

"""Model surgery: changes made to a new model's weights before training, each recorded in model.json.

* :func:`whiten_first_conv`: the first conv set to whiten the images' patches, and frozen;
* :func:`airbench_init`: identity-initialised convs, batch-norm scales fixed at 1, a smaller head;
* :func:`freeze`: parameters that training leaves alone (``meta["frozen"]``, re-applied on load).

Each takes a :class:`~seethrough.trained.TrainedModel` (anything with ``net``, ``spec``, ``meta``
and ``prepare``) and changes it in place. The recipes (``seethrough/recipes.py``) choose which to apply.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SeethroughError

# airbench multiplies its logits by 1/9 (arXiv 2404.00498): a head that starts this much smaller and
# learns its square slower trains the same way
AIRBENCH_HEAD_SCALE = 1 / 9


@torch.no_grad()
def whiten_first_conv(model, images: np.ndarray, eps: float = 5e-4, limit: int = 10000) -> None:
    """Set the first layer (a k x k conv with 2*C*k*k outputs) to whiten the data's k x k patches.

    The patch covariance is Sigma = V diag(lambda) V^T; the filters are
    ``+-diag(1/sqrt(lambda + eps)) V^T`` (both signs, so a ReLU after keeps all of it), the
    bias centres the output, and the weights are frozen: only the bias trains.
    """
    conv = model.net[0]
    c, kh, kw = conv.in_channels, *conv.kernel_size
    d = c * kh * kw
    if not isinstance(conv, torch.nn.Conv2d) or conv.out_channels != 2 * d:
        raise SeethroughError(f"whitening needs a first conv with {2 * d} outputs, got {conv}")
    x = model.prepare(images[:limit]).cpu()                       # (N, C, H, W)
    patches = F.unfold(x, (kh, kw)).transpose(1, 2).reshape(-1, d).double()  # (N*L, C*kh*kw)
    mean = patches.mean(0)
    cov = torch.cov(patches.T)                                    # (d, d)
    lam, vec = torch.linalg.eigh(cov)                             # ascending eigenvalues
    w = vec.T / torch.sqrt(lam + eps)[:, None]                    # (d, d): rows are filters
    weight = torch.cat([w, -w]).float()                           # (2d, d)
    conv.weight.copy_(weight.view(2 * d, c, kh, kw).to(conv.weight.device))
    if conv.bias is not None:
        conv.bias.copy_((-weight.double() @ mean).float().to(conv.bias.device))
    freeze(model, [f"{model.spec[0].name}.weight"])


def freeze(model, names: list[str]) -> None:
    """Keep parameters ``names`` out of training; recorded in model.json so a resumed run keeps them too."""
    model.meta["frozen"] = sorted(set(model.meta.get("frozen", [])) | set(names))
    params = dict(model.net.named_parameters())
    for name in names:
        params[name].requires_grad_(False)


@torch.no_grad()
def airbench_init(model, head_scale: float = AIRBENCH_HEAD_SCALE) -> None:
    """airbench's initialisation (arXiv 2404.00498), three steps:

    * identity: in every 3x3 conv with at least as many outputs as inputs, output channel i
      starts as a copy of input channel i (a Dirac kernel), the rest keep their random start;
    * batch-norm scales are fixed at 1 (frozen); only the shifts (biases) train;
    * the last linear layer starts ``head_scale`` times its random start. Together with
      ``head_lr_scale = head_scale**2`` in training, this trains exactly as airbench's logits
      multiplied by 1/9 do, while the saved model stays a plain linear layer.
    """
    frozen, modules = [], dict(model.net.named_modules())
    for name, m in modules.items():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.out_channels >= m.in_channels:
            torch.nn.init.dirac_(m.weight[:m.in_channels])
        if isinstance(m, torch.nn.BatchNorm2d) and m.weight is not None:
            m.weight.fill_(1.0)
            frozen.append(f"{name}.weight")
    linears = [m for m in modules.values() if isinstance(m, torch.nn.Linear)]
    if linears:
        linears[-1].weight.mul_(head_scale)
    freeze(model, frozen)

"""What "removing" a pixel means, for deletion and insertion curves.

A removed pixel is replaced, in the model's standardised input, by

- ``mean``: the training data's mean colour (0), the baseline integrated gradients and
  occlusion use too, which favours them;
- ``zero``: a black pixel;
- ``blur``: the same pixel of a Gaussian-blurred copy of the image (sigma: a sixteenth of
  the shorter side, at least 1 pixel), as in RISE (Petsiuk et al. 2018);
- ``road``: noisy linear imputation (L. Brocki, N. C. Chung / Y. Rong, T. Leemann,
  V. Borisov, G. Kasneci, E. Kasneci, "A Consistent and Efficient Evaluation Strategy for
  Attribution Methods", ICML 2022, arXiv:2202.00449, "ROAD"): each removed pixel is the
  weighted mean of its eight neighbours (1/6 for the four direct ones, 1/12 for the
  diagonals, renormalised at the border), solved as one sparse linear system with the
  kept pixels fixed, plus Gaussian noise of 1 % of the pixel range. The imputed values
  follow the image, so the shape of the removed region does not leak the ranking.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage, sparse
from scipy.sparse.linalg import spsolve

from ..errors import ModelError

REMOVALS = ("road", "blur", "mean", "zero")


def check_removals(removals) -> list[str]:
    names = list(REMOVALS) if removals in (None, "all") else [removals] if isinstance(removals, str) else list(removals)
    bad = [r for r in names if r not in REMOVALS]
    if bad or not names:
        raise ModelError(f"unknown removal {', '.join(bad) or '(none)'}; expected one of {', '.join(REMOVALS)} or all")
    return names


def fill(model, x: torch.Tensor, removal: str) -> torch.Tensor:
    """The values removed pixels take for ``mean``, ``zero`` and ``blur``: (N, C, H, W) like x."""
    if removal == "mean":
        return torch.zeros_like(x)
    if removal == "zero":
        mean = torch.tensor(model.preprocess.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(model.preprocess.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (-mean / std).expand_as(x)
    sigma = max(1.0, min(x.shape[2:]) / 16)
    blurred = ndimage.gaussian_filter(x.detach().cpu().numpy(), sigma=(0, 0, sigma, sigma), mode="reflect")
    return torch.as_tensor(blurred, dtype=x.dtype, device=x.device)


def neighbour_weights(h: int, w: int) -> sparse.csr_matrix:
    """(H*W, H*W) row-stochastic weights of each pixel's 8 neighbours (direct 1/6, diagonal 1/12)."""
    rows, cols, vals = [], [], []
    idx = np.arange(h * w).reshape(h, w)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            src = idx[max(0, -di):h - max(0, di), max(0, -dj):w - max(0, dj)]
            dst = idx[max(0, di):h - max(0, -di) or None, max(0, dj):w - max(0, -dj) or None]
            rows.append(src.ravel())
            cols.append(dst.ravel())
            vals.append(np.full(src.size, 1 / 6 if di == 0 or dj == 0 else 1 / 12))
    m = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))
    return sparse.diags(1 / np.asarray(m.sum(1)).ravel()) @ m


def road_impute(image: np.ndarray, removed: np.ndarray, weights, noise: np.ndarray) -> np.ndarray:
    """Noisy linear imputation of one (C, H, W) image where bool (H, W) ``removed`` is set.

    ``noise``: (C, H, W) values added to the imputed pixels.
    """
    c, h, w = image.shape
    flat = image.reshape(c, -1).T                                   # (H*W, C)
    r = np.flatnonzero(removed.ravel())
    out = flat.copy()
    if len(r) == 0:
        return image
    k = np.flatnonzero(~removed.ravel())
    if len(k) == 0:
        out[:] = 0.0                                                # nothing to impute from: the mean colour
    else:
        a = sparse.identity(len(r), format="csc") - weights[r][:, r].tocsc()
        b = weights[r][:, k] @ flat[k]                              # (R, C)
        out[r] = np.asarray(spsolve(a, b)).reshape(len(r), c)
    out[r] += noise.reshape(c, -1).T[r]
    return out.T.reshape(c, h, w)


def road_inputs(model, x: torch.Tensor, removed: torch.Tensor, seed: int = 0, level: float = 0.01) -> torch.Tensor:
    """ROAD inputs for prepared x (B, C, H, W) and bool masks (B, S, H, W) -> (B, S, C, H, W)."""
    b, c, h, w = x.shape
    weights = neighbour_weights(h, w)
    std = np.asarray(model.preprocess.std, np.float64).reshape(c, 1, 1)
    xs = x.detach().cpu().double().numpy()
    masks = removed.cpu().numpy()
    rng = np.random.default_rng(seed)
    out = np.empty((b, masks.shape[1], c, h, w))
    for i in range(b):
        for s in range(masks.shape[1]):
            noise = rng.standard_normal((c, h, w)) * level * 255 / std
            out[i, s] = road_impute(xs[i], masks[i, s], weights, noise)
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def removed_inputs(model, x: torch.Tensor, removed: torch.Tensor, removal: str, seed: int = 0) -> torch.Tensor:
    """Prepared x (B, C, H, W) with the pixels of bool (B, S, H, W) ``removed`` replaced -> (B, S, C, H, W)."""
    if removal == "road":
        return road_inputs(model, x, removed, seed)
    gone = removed.unsqueeze(2)                                     # (B, S, 1, H, W)
    return torch.where(gone, fill(model, x, removal)[:, None], x[:, None])

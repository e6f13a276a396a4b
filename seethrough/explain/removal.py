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
  diagonals, renormalised at the border), solved as one linear system with the kept
  pixels fixed, plus Gaussian noise of 1 % of the pixel range. The imputed values follow
  the image, so the shape of the removed region does not leak the ranking.

How ROAD is solved. With A the symmetric neighbour weights and D their row sums (the
degree, smaller at the border), the system for the removed pixels r given the kept ones k
is (I - W_rr) x_r = W_rk x_k with W = D^-1 A. Multiplied by D_rr it is
(D_rr - A_rr) x_r = A_rk x_k, symmetric positive definite whenever at least one pixel is
kept (the 8-neighbour grid is connected). :func:`road_inputs` solves every image, step
and channel of a batch at once by conjugate gradients in torch (:func:`road_solve`: float32
steps refined to a float64 residual, Jacobi plus a coarse-block preconditioner), applying A
as shifted slices (:func:`neighbour_sum`) and the masks elementwise, to a residual of 1e-5
of the right-hand side (:data:`ROAD_TOL`: a hundredth of a grey level from the exact values);
:func:`road_impute` (one scipy ``spsolve`` per image) is the reference it is tested
against. With every pixel removed there is nothing to impute from: the pixel becomes the
mean colour (0) plus the noise.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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


def road_noise(model, shape, seed: int = 0, level: float = 0.01) -> np.ndarray:
    """ROAD's noise for masks of ``shape`` (B, S) and images (C, H, W) -> (B, S, C, H, W).

    Gaussian, ``level`` of the 0..255 range in the standardised input, drawn image by
    image and step by step from ``seed``.
    """
    c = shape[2]
    std = np.asarray(model.preprocess.std, np.float64).reshape(c, 1, 1)
    return np.random.default_rng(seed).standard_normal(shape) * level * 255 / std


def neighbour_kernel(dtype=torch.float64) -> torch.Tensor:
    """(3, 3) the symmetric neighbour weights A: direct 1/6, diagonal 1/12, 0 for the pixel itself."""
    return torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=dtype)


def neighbour_sum(v: torch.Tensor) -> torch.Tensor:
    """12 A v for fields v (..., H, W): each pixel's weighted sum of its neighbours inside the image.

    The 3x3 kernel 12 A is [1, 2, 1]^T [1, 2, 1] less 4 at the centre, so it runs as two
    [1, 2, 1] passes over shifted slices (zero outside the image), several times faster on
    the CPU than a 3x3 ``conv2d`` of one channel.
    """
    rows = 2 * v                                                            # (..., H, W) [1, 2, 1] down
    rows[..., 1:, :] += v[..., :-1, :]
    rows[..., :-1, :] += v[..., 1:, :]
    both = 2 * rows                                                         # (..., H, W) then across
    both[..., 1:] += rows[..., :-1]
    both[..., :-1] += rows[..., 1:]
    return both.sub_(v, alpha=4)


def batched_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, C, H, W), (M, C, H, W) -> (M, C) one dot product per field."""
    return (a * b).sum((2, 3))


OFFSETS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]  # the 3x3 stencil, row by row


def coarse_grid(h: int, w: int, cells: int = 8) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Blocks of about (h / cells) x (w / cells) pixels for the coarse correction.

    Returns the block of each pixel (H*W,), the flat index block(i) * n + block(i + o)
    of each pixel i and stencil offset o (9, H*W) (outside the image: the pixel's own
    diagonal entry, which gets weight 0) and the number of blocks n.
    """
    bh, bw = -(-h // cells), -(-w // cells)
    rows, cols = torch.arange(h).view(-1, 1) // bh, torch.arange(w).view(1, -1) // bw
    block = (rows * -(-w // bw) + cols).expand(h, w)                         # (H, W)
    n = int(block.max()) + 1
    pad = F.pad(block[None].double(), (1, 1, 1, 1), value=-1)[0].long()      # (H+2, W+2)
    pairs = []
    for di, dj in OFFSETS:
        other = pad[1 + di:1 + di + h, 1 + dj:1 + dj + w]                   # (H, W) the neighbour's block
        pairs.append(block * n + torch.where(other < 0, block, other))
    return block.reshape(-1), torch.stack(pairs).reshape(9, -1), n


def coarse_operator(r_mask: torch.Tensor, degree: torch.Tensor, pairs: torch.Tensor, n: int) -> torch.Tensor:
    """Galerkin coarse matrices P^T (D_rr - A_rr) P (M, n, n), P the removed pixels of each block.

    ``r_mask`` (M, H, W) is 1 where removed, ``degree`` (H, W) the row sums of A. Blocks
    without a removed pixel get 1 on the diagonal, so the matrix of a system with a kept
    pixel is positive definite.
    """
    m, h, w = r_mask.shape
    kernel = neighbour_kernel(r_mask.dtype).view(9)
    shifted = F.pad(r_mask, (1, 1, 1, 1))                                   # (M, H+2, W+2) 0 outside
    vals = torch.stack([r_mask * (degree if (di, dj) == (0, 0) else -kernel[3 * di + dj + 4]
                                  * shifted[:, 1 + di:1 + di + h, 1 + dj:1 + dj + w])
                        for di, dj in OFFSETS], 1)                          # (M, 9, H, W)
    coarse = torch.zeros(m, n * n, dtype=r_mask.dtype, device=r_mask.device)
    coarse.scatter_add_(1, pairs.to(r_mask.device).reshape(1, -1).expand(m, -1), vals.reshape(m, -1))
    coarse = coarse.view(m, n, n)
    empty = coarse.diagonal(dim1=1, dim2=2) == 0                            # (M, n) nothing removed there
    return coarse + torch.diag_embed(empty.to(coarse.dtype))


def block_sums(block: torch.Tensor, n: int, h: int, w: int):
    """P^T and P of the coarse blocks: (M, C, H, W) -> (M, C, n) sums per block, and back.

    Reshapes when the blocks tile the image (the usual case), else indexes by ``block``.
    """
    bh = int((block.view(h, w)[:, 0] == 0).sum())
    bw = int((block.view(h, w)[0] == 0).sum())
    if h % bh == 0 and w % bw == 0:
        nh, nw = h // bh, w // bw

        def restrict(v):
            return v.view(*v.shape[:2], nh, bh, nw, bw).sum((3, 5)).flatten(2)

        def prolong(u):
            return u.view(*u.shape[:2], nh, 1, nw, 1).expand(*u.shape[:2], nh, bh, nw, bw).reshape(*u.shape[:2], h, w)
    else:
        def restrict(v):
            return torch.zeros(*v.shape[:2], n, dtype=v.dtype, device=v.device).index_add_(2, block, v.flatten(2))

        def prolong(u):
            return u[..., block].view(*u.shape[:2], h, w)
    return restrict, prolong


def pcg(apply, precondition, rhs: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """Preconditioned conjugate gradients for the systems ``apply(x) = rhs`` (M, C, H, W) at once.

    ``apply`` and ``precondition`` are symmetric positive definite maps of such fields;
    each system stops when its residual is below ``tol`` times its right-hand side.
    """
    x = torch.zeros_like(rhs)
    res = rhs.clone()
    z = precondition(res)
    p = z.clone()
    rz = batched_dot(res, z)                                                # (M, C)
    limit = tol ** 2 * batched_dot(rhs, rhs)                               # (M, C)
    one = torch.ones_like(rz)
    for _ in range(max_iter):
        active = batched_dot(res, res) > limit                              # (M, C)
        if not active.any():
            break
        ap = apply(p)
        alpha = torch.where(active, rz / batched_dot(p, ap).where(active, one), 0)[..., None, None]
        x.add_(alpha * p)
        res.sub_(alpha * ap)
        z = precondition(res)
        rz_next = batched_dot(res, z)
        beta = torch.where(active, rz_next / rz.where(active, one), 0)[..., None, None]
        p = z.add_(beta * p)
        rz = rz_next
    return x


def road_solve(values: torch.Tensor, removed: torch.Tensor, tol: float = 1e-10, inner_tol: float = 1e-5,
               max_iter: int | None = None, rounds: int = 20) -> torch.Tensor:
    """Linear imputation (no noise) of float64 ``values`` (M, C, H, W) where bool ``removed`` (M, H, W).

    Solves (D_rr - A_rr) x_r = A_rk x_k for every image and channel by conjugate
    gradients (:func:`pcg`) with an additive two-level preconditioner: Jacobi (D) plus an
    exact solve of the Galerkin coarse system on blocks of an 8 x 8 grid, which keeps the
    number of steps low for large removed regions. The steps run in float32 and correct
    the float64 residual (iterative refinement, each round to ``inner_tol``) until it is
    below ``tol`` times the right-hand side (at most ``rounds`` rounds); ``max_iter``
    bounds each round (H*W by default). Kept pixels are returned unchanged, fields with every pixel removed as 0.
    """
    m, c, h, w = values.shape
    r_mask = removed.to(values.dtype)                                       # (M, H, W) 1 where removed
    degree = neighbour_sum(torch.ones(h, w, dtype=values.dtype, device=values.device)) / 12  # (H, W)
    solvable = ~removed.flatten(1).all(1)                                   # (M,) at least one pixel kept
    kept = values * (1 - r_mask[:, None])                                   # (M, C, H, W)
    rhs = (r_mask * solvable.view(-1, 1, 1).to(values.dtype))[:, None] * neighbour_sum(kept) / 12
    block, pairs, n = coarse_grid(h, w)
    restrict, prolong = block_sums(block.to(values.device), n, h, w)
    coarse = coarse_operator(r_mask, degree, pairs, n)                      # (M, n, n)
    eye = torch.eye(n, dtype=values.dtype, device=values.device)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(torch.where(solvable.view(-1, 1, 1), coarse, eye)))

    def operators(dtype):
        r, diag, inv = r_mask[:, None].to(dtype), (r_mask * degree)[:, None].to(dtype), inverse.to(dtype)
        r12, inv_degree = r / 12, (r_mask / degree)[:, None].to(dtype)

        def apply(v):                                                      # (D_rr - A_rr) v on r
            return torch.addcmul(diag * v, r12, neighbour_sum(v), value=-1)

        def precondition(v):                                               # (D^-1 + P C^-1 P^T) v
            coarse_v = torch.bmm(restrict(v), inv)                         # (M, C, n), C symmetric
            return torch.addcmul(inv_degree * v, r, prolong(coarse_v))
        return apply, precondition

    apply64, _ = operators(values.dtype)
    apply32, precondition32 = operators(torch.float32)
    limit = tol ** 2 * batched_dot(rhs, rhs)                               # (M, C)
    x = torch.zeros_like(values)
    res = rhs
    for _ in range(rounds):
        if not (batched_dot(res, res) > limit).any():
            break
        x += pcg(apply32, precondition32, res.float(), inner_tol, max_iter or h * w).to(values.dtype)
        res = rhs - apply64(x)
    return kept + r_mask[:, None] * x


ROAD_TOL = 1e-5   # relative residual of the imputation: within ~1e-4 of the exact solve (checked in the tests)


def road_inputs(model, x: torch.Tensor, removed: torch.Tensor, seed: int = 0, level: float = 0.01,
                chunk: int = 2 ** 17, tol: float = ROAD_TOL) -> torch.Tensor:
    """ROAD inputs for prepared x (B, C, H, W) and bool masks (B, S, H, W) -> (B, S, C, H, W).

    :func:`road_solve` for every image, step and channel to a residual of ``tol`` times the
    right-hand side, ``chunk`` values at a time (a chunk's fields stay in the CPU's cache),
    step by step so that the systems of a chunk need about as many iterations. The default
    (:data:`ROAD_TOL`, one round of float32 steps) leaves values within about 1e-4 of
    the exact imputation in the standardised input, a hundredth of a grey level and a few
    hundred times smaller than the noise ROAD then adds; the tests solve to 1e-10 and compare
    with scipy's direct solve.
    """
    b, c, h, w = x.shape
    s = removed.shape[1]
    gone = removed.transpose(0, 1).reshape(-1, h, w)                                  # (S*B, H, W)
    values = x.detach().double()[None].expand(s, b, c, h, w).reshape(-1, c, h, w)     # (S*B, C, H, W)
    per = max(1, chunk // (c * h * w))
    imputed = torch.cat([road_solve(values[i:i + per], gone[i:i + per], tol=tol) for i in range(0, len(gone), per)])
    imputed = imputed.view(s, b, c, h, w).transpose(0, 1)                              # (B, S, C, H, W)
    noise = torch.as_tensor(road_noise(model, (b, s, c, h, w), seed, level), device=x.device)
    return (imputed + noise * removed[:, :, None]).to(x.dtype)


def road_inputs_spsolve(model, x: torch.Tensor, removed: torch.Tensor, seed: int = 0,
                        level: float = 0.01) -> torch.Tensor:
    """The reference for :func:`road_inputs`: one sparse direct solve per image and step (slow)."""
    b, c, h, w = x.shape
    weights = neighbour_weights(h, w)
    xs = x.detach().cpu().double().numpy()
    masks = removed.cpu().numpy()
    noise = road_noise(model, masks.shape[:2] + (c, h, w), seed, level)
    out = np.empty((b, masks.shape[1], c, h, w))
    for i in range(b):
        for s in range(masks.shape[1]):
            out[i, s] = road_impute(xs[i], masks[i, s], weights, noise[i, s])
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def removed_inputs(model, x: torch.Tensor, removed: torch.Tensor, removal: str, seed: int = 0) -> torch.Tensor:
    """Prepared x (B, C, H, W) with the pixels of bool (B, S, H, W) ``removed`` replaced -> (B, S, C, H, W)."""
    if removal == "road":
        return road_inputs(model, x, removed, seed)
    gone = removed.unsqueeze(2)                                     # (B, S, 1, H, W)
    return torch.where(gone, fill(model, x, removal)[:, None], x[:, None])

"""Augmentation on whole batches of tensors: random crop with padding, horizontal flip, cutout.

All work on a float (N, C, H, W) batch at once, drawing from a torch.Generator so
that a seed makes them repeatable. No Python loop runs over images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image by ``pad`` (reflect) and cut a random HxW window from it."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (N, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]  # (N, C, H, W)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Set a ``size`` x ``size`` square of each image to 0 (the mean, after standardising).

    Cutout (DeVries and Taylor 2017, arXiv 1708.04552): the square's centre is any pixel, so near
    the border part of it falls outside the image.
    """
    if size <= 0:
        return x
    n, c, h, w = x.shape
    top = torch.randint(0, h, (n,), generator=generator).to(x.device) - size // 2
    left = torch.randint(0, w, (n,), generator=generator).to(x.device) - size // 2
    rows = torch.arange(h, device=x.device) - top[:, None]                    # (N, H)
    cols = torch.arange(w, device=x.device) - left[:, None]                   # (N, W)
    inside = ((rows >= 0) & (rows < size))[:, None, :, None] & ((cols >= 0) & (cols < size))[:, None, None, :]
    return x.masked_fill(inside, 0)                                           # (N, C, H, W)


def flip_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left to right the images where the boolean ``mask`` (N,) is True."""
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 2, flip: torch.Tensor | None = None,
            cutout: int = 0) -> torch.Tensor:
    """Crop (``pad`` pixels), mirror the rows where the mask ``flip`` (N,) is True, then cut out."""
    x = random_crop(x, pad, generator)
    if flip is not None:
        x = flip_rows(x, flip)
    return random_cutout(x, cutout, generator)

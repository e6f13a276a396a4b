"""How far an attribution map can be trusted.

Deletion and insertion (V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input Sampling
for Explanation of Black-box Models", BMVC 2018, arXiv:1806.07421): pixels are removed
from the image (set to the baseline, 0 in the prepared input: the training data's mean
colour) in the order of the map, most important first, and the target class's
probability is measured after each step; insertion starts from the baseline and reveals
pixels in the same order. A faithful map gives a low deletion area and a high insertion
area; both are compared with the areas for a random order of the same pixels.

Model-parameter randomization (J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt,
B. Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018, arXiv:1810.03292): the trained
weights are replaced by random ones and the maps of the two models are compared by
Spearman rank correlation of their absolute values. A map that explains the model must
change, so a correlation near 1 fails the check.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from ..models import build_torch
from ..trained import TrainedModel
from .base import as_images, as_model, net_dtype
from .registry import get_method


_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 calls it trapz


@dataclass
class Curves:
    fractions: np.ndarray   # (S+1,) share of pixels removed or revealed
    deletion: np.ndarray    # (N, S+1) target probability
    insertion: np.ndarray   # (N, S+1)

    @property
    def deletion_auc(self) -> float:
        return float(_trapezoid(self.deletion, self.fractions, axis=1).mean())

    @property
    def insertion_auc(self) -> float:
        return float(_trapezoid(self.insertion, self.fractions, axis=1).mean())


def pixel_ranks(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, H, W) maps -> (N, H, W) rank of each pixel, 0 for the highest value; ties in random order."""
    rng = np.random.default_rng(seed)
    n = len(maps)
    flat = maps.reshape(n, -1)
    ranks = np.empty(flat.shape, np.int64)
    for i in range(n):
        order = np.lexsort((rng.random(flat.shape[1]), -flat[i]))  # by value, then a random key
        ranks[i, order] = np.arange(flat.shape[1])
    return ranks.reshape(maps.shape)


@torch.no_grad()
def curves(model, images, maps: np.ndarray, target=None, steps: int = 20, seed: int = 0,
           max_elements: int = 2 ** 22) -> Curves:
    """Deletion and insertion curves of ``maps`` (N, H, W) for uint8 ``images`` (N, H, W, C).

    ``target``: class index per image; the predicted class when None.
    """
    model = as_model(model)
    batch, _ = as_images(model, images)
    maps = np.asarray(maps, np.float64).reshape(len(batch), *batch.shape[1:3])
    model.net.eval()
    x = model.prepare(batch).to(net_dtype(model.net))                     # (N, C, H, W)
    if target is None:
        target = model.net(x).argmax(1)
    target = torch.as_tensor(np.asarray(target), device=x.device).view(-1)
    n, c, h, w = x.shape
    fractions = np.linspace(0, 1, steps + 1)
    counts = torch.as_tensor(np.round(fractions * h * w), device=x.device)  # (S+1,)
    ranks = torch.as_tensor(pixel_ranks(maps, seed), device=x.device)       # (N, H, W)
    per_pass = max(1, max_elements // (c * h * w * (steps + 1)))
    dele, ins = [], []
    for i in range(0, n, per_pass):
        xi, ri, ti = x[i:i + per_pass], ranks[i:i + per_pass], target[i:i + per_pass]
        shown = (ri[:, None] < counts.view(1, -1, 1, 1)).unsqueeze(2)      # (B, S+1, 1, H, W) top pixels
        xs = xi[:, None]                                                  # (B, 1, C, H, W)
        for kind, inputs, out in (("deletion", xs * ~shown, dele), ("insertion", xs * shown, ins)):
            prob = model.net(inputs.flatten(0, 1)).softmax(1)             # (B*(S+1), K)
            prob = prob.view(len(xi), steps + 1, -1)
            out.append(prob.gather(2, ti.view(-1, 1, 1).expand(-1, steps + 1, 1))[..., 0].cpu().numpy())
    return Curves(fractions, np.concatenate(dele), np.concatenate(ins))


def randomized(model: TrainedModel, seed: int = 0) -> TrainedModel:
    """A copy of ``model`` with freshly initialised weights (same spec, preprocessing, classes)."""
    torch.manual_seed(seed)
    net = build_torch(model.spec, model.in_chw).to(model.device).eval()
    clone = copy.copy(model)
    clone.net = net
    return clone


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over images of the Spearman correlation of |a| and |b| (N, H, W); NaN where a map is constant."""
    vals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, y in zip(np.abs(a).reshape(len(a), -1), np.abs(b).reshape(len(b), -1)):
            vals.append(spearmanr(x, y).statistic)
    vals = np.asarray(vals, float)
    return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")


def randomization_check(model, images, method: str, seed: int = 0, **options) -> float:
    """Rank correlation between the maps of the trained model and of a randomly initialised copy."""
    model = as_model(model)
    batch, _ = as_images(model, images)
    target = model.predict(batch)  # explain the same class in both models
    cls = get_method(method)
    with cls(model, **options) as e:
        trained = e(batch, target=target)
    with cls(randomized(model, seed), **options) as e:
        rand = e(batch, target=target)
    return rank_correlation(trained, rand)


def score(model, images, method: str, steps: int = 20, seed: int = 0, **options) -> dict:
    """One row of the faithfulness table for ``method`` on ``images``."""
    model = as_model(model)
    batch, _ = as_images(model, images)
    target = model.predict(batch)
    cls = get_method(method)
    t0 = time.perf_counter()
    with cls(model, **options) as e:
        maps = e(batch, target=target)
    seconds = time.perf_counter() - t0
    ordered = curves(model, batch, maps, target, steps, seed)
    rng = np.random.default_rng(seed + 1)
    shuffled = curves(model, batch, rng.random(maps.shape), target, steps, seed)
    return {"method": method, "deletion_auc": ordered.deletion_auc, "insertion_auc": ordered.insertion_auc,
            "random_deletion_auc": shuffled.deletion_auc, "random_insertion_auc": shuffled.insertion_auc,
            "randomization_corr": randomization_check(model, batch, method, seed, **options),
            "ms_per_image": 1000 * seconds / len(batch), "images": len(batch)}


def score_methods(model, images, methods=None, **kwargs) -> list[dict]:
    """:func:`score` for each of ``methods`` (every applicable method when None)."""
    from .registry import applicable_methods

    return [score(model, images, m, **kwargs) for m in (methods or applicable_methods(model))]

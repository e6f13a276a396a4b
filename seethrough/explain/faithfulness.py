"""How far an attribution map can be trusted: deletion and insertion, and the sanity check.

Deletion and insertion (V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input Sampling
for Explanation of Black-box Models", BMVC 2018, arXiv:1806.07421): pixels are removed
from the image in the order of the map, highest value first, and the target class's
probability is measured after each step; insertion starts from a fully removed image and
puts the pixels back in the same order. A faithful map gives a low deletion area and a
high insertion area; both are compared with the areas for a random order of the same
pixels. What "removed" means changes the ranking of the methods (a removal equal to a
method's own baseline favours it), so :func:`score` measures every removal of
:mod:`.removal` (mean colour, blurred copy, black, and ROAD's noisy linear imputation)
and gives each area's mean and standard deviation over the images.

The model-randomization check (Adebayo et al. 2018) is :mod:`.randomization`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .base import as_images, as_model, constant_maps, net_dtype, run_net
from .randomization import randomization_check
from .registry import get_method
from .removal import check_removals, removed_inputs

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 calls it trapz


@dataclass
class Curves:
    fractions: np.ndarray   # (S+1,) share of pixels removed or revealed
    deletion: np.ndarray    # (N, S+1) target probability
    insertion: np.ndarray   # (N, S+1)
    removal: str = "mean"

    @property
    def deletion_aucs(self) -> np.ndarray:
        return _trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_aucs(self) -> np.ndarray:
        return _trapezoid(self.insertion, self.fractions, axis=1)

    @property
    def deletion_auc(self) -> float:
        return float(self.deletion_aucs.mean())

    @property
    def insertion_auc(self) -> float:
        return float(self.insertion_aucs.mean())


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
           max_elements: int = 2 ** 20, removal: str = "mean") -> Curves:
    """Deletion and insertion curves of ``maps`` (N, H, W) for uint8 ``images`` (N, H, W, C).

    ``target``: class index per image; the predicted class when None. ``removal``: what a
    removed pixel becomes (:data:`~seethrough.explain.removal.REMOVALS`).
    """
    check_removals(removal)
    model = as_model(model)
    batch, _ = as_images(model, images)
    maps = np.asarray(maps, np.float64).reshape(len(batch), *batch.shape[1:3])
    model.net.eval()
    x = model.prepare(batch).to(net_dtype(model.net))                     # (N, C, H, W)
    if target is None:
        target = run_net(model.net, x).argmax(1)
    target = torch.as_tensor(np.asarray(target), device=x.device).view(-1)
    n, c, h, w = x.shape
    fractions = np.linspace(0, 1, steps + 1)
    counts = torch.as_tensor(np.round(fractions * h * w), device=x.device)  # (S+1,)
    ranks = torch.as_tensor(pixel_ranks(maps, seed), device=x.device)       # (N, H, W)
    per_pass = max(1, max_elements // (c * h * w * (steps + 1)))
    dele, ins = [], []
    for i in range(0, n, per_pass):
        xi, ri, ti = x[i:i + per_pass], ranks[i:i + per_pass], target[i:i + per_pass]
        top = ri[:, None] < counts.view(1, -1, 1, 1)                      # (B, S+1, H, W) the first pixels
        for removed, out in ((top, dele), (~top, ins)):
            inputs = removed_inputs(model, xi, removed, removal, seed)     # (B, S+1, C, H, W)
            prob = run_net(model.net, inputs.flatten(0, 1)).softmax(1).view(len(xi), steps + 1, -1)
            out.append(prob.gather(2, ti.view(-1, 1, 1).expand(-1, steps + 1, 1))[..., 0].cpu().numpy())
    return Curves(fractions, np.concatenate(dele), np.concatenate(ins), removal)


def removal_scores(model, batch, maps, target, removals, steps: int, seed: int, keep_curves: bool = False,
                   random_curves: dict | None = None) -> dict:
    """Per removal: deletion and insertion areas of ``maps`` and of a random order, mean and spread.

    The random order depends only on the images, targets and seed, so ``random_curves``
    (a dict, filled on first use) lets several methods share it.
    """
    shuffled = np.random.default_rng(seed + 1).random(maps.shape)
    random_curves = {} if random_curves is None else random_curves
    out = {}
    for removal in removals:
        ordered = curves(model, batch, maps, target, steps, seed, removal=removal)
        if (removal, steps, seed) not in random_curves:
            random_curves[removal, steps, seed] = curves(model, batch, shuffled, target, steps, seed, removal=removal)
        rand = random_curves[removal, steps, seed]
        row = {"deletion": ordered.deletion_auc, "deletion_std": float(ordered.deletion_aucs.std()),
               "insertion": ordered.insertion_auc, "insertion_std": float(ordered.insertion_aucs.std()),
               "random_deletion": rand.deletion_auc, "random_insertion": rand.insertion_auc}
        if keep_curves:
            row["curves"] = {"fractions": ordered.fractions.tolist(), "deletion": ordered.deletion.tolist(),
                             "insertion": ordered.insertion.tolist()}
        out[removal] = row
    return out


def score(model, images, method: str, steps: int = 20, seed: int = 0, *, target=None, removals="all",
          randomization: str | None = "cascading", seeds=(0, 1, 2), keep_curves: bool = False,
          random_curves: dict | None = None, **options) -> dict:
    """One row of the faithfulness table for ``method`` on ``images``.

    Keys: ``method``, ``images``, ``ms_per_image`` (the map alone), ``seconds`` (map,
    removals, randomization), ``constant_maps``,
    ``removals`` ({removal: deletion / insertion mean and std over the images, and the
    random order's}), ``randomization`` (:meth:`Randomization.summary`, None when
    ``randomization`` is None) and, for integrated gradients, ``ig`` (steps and the
    largest convergence delta relative to |f(x) - f(x0)|; the randomized copies explain
    each image with the steps its trained map needed). ``random_curves``: see
    :func:`removal_scores` (pass one dict to the calls for the same images and targets).
    """
    model = as_model(model)
    batch, _ = as_images(model, images)
    target = model.predict(batch) if target is None else np.asarray(target).reshape(-1)
    cls = get_method(method)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant maps are counted in the row
        with cls(model, **options) as e:
            maps = e(batch, target=target)
            diagnostics = list(e.diagnostics)
    seconds = time.perf_counter() - t0
    row = {"method": method, "images": len(batch), "ms_per_image": 1000 * seconds / len(batch),
           "constant_maps": int(constant_maps(maps).sum()),
           "removals": removal_scores(model, batch, maps, target, check_removals(removals), steps, seed,
                                      keep_curves, random_curves)}
    t1 = time.perf_counter()
    if diagnostics:
        rel = [d["relative_delta"] for d in diagnostics]
        row["ig"] = {"steps": [d["steps"] for d in diagnostics], "relative_delta": rel,
                     "max_relative_delta": float(max(rel))}
        options = {**options, "steps": [d["steps"] for d in diagnostics]}  # each image's steps for its random copies
    row["randomization"] = None if randomization is None else randomization_check(
        model, batch, method, mode=randomization, seeds=seeds, target=target, trained_maps=maps,
        **options).summary()
    row["seconds"] = {"map": seconds, "removals": t1 - t0 - seconds, "randomization": time.perf_counter() - t1}
    return row


def score_methods(model, images, methods=None, **kwargs) -> list[dict]:
    """:func:`score` for each of ``methods`` (every applicable method when None), sharing the
    random order's curves."""
    from .registry import applicable_methods

    model = as_model(model)
    batch, _ = as_images(model, images)
    if kwargs.get("target") is None:
        kwargs["target"] = model.predict(batch)
    shared: dict = {}
    return [score(model, batch, m, random_curves=shared, **kwargs) for m in (methods or applicable_methods(model))]

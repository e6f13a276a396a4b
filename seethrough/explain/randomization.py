"""The model-parameter randomization check.

J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for
Saliency Maps", NeurIPS 2018, arXiv:1810.03292.

A map that explains the model must change when the model's weights do. The layers with
weights are re-initialised (as at the start of training) in two ways:

- ``cascading``: from the top (output) layer down, one more layer at each step, until
  every layer is random;
- ``independent``: one layer at a time, the others trained.

Each step runs over several seeds, and the maps of the trained and the randomized model
(same images, same target class) are compared per image by the Spearman rank correlation
of their absolute values, of their signed values, and by the SSIM (Wang et al. 2004) of
the absolute maps scaled to [0, 1]. A map that comes out constant has no rank
correlation: it is counted and reported, not averaged in.

Verdict: a method **passes** when, with every layer randomized (the end of the cascade),
the mean Spearman correlation of the absolute maps is below :data:`THRESHOLD` (0.5), and
**fails** otherwise. Re-drawing the weights uses a forked random state: the global torch
random state is the same before and after.

Cost: the copies share every layer that is not re-initialised with the trained network
(:func:`randomized` copies only the random ones), and methods that can explain several
networks at once (occlusion) run all 15 copies of a cascade over 3 seeds in one pass,
computing the shared lower layers once; the others explain each copy in turn.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import rankdata
from torch import nn

from ..errors import ModelError
from ..trained import TrainedModel
from .base import as_images, as_model, constant_maps
from .registry import get_method

THRESHOLD = 0.5
MODES = ("cascading", "independent")


def parameter_layers(model: TrainedModel) -> list[str]:
    """Names of the spec's layers that hold weights, input to output."""
    return [l.name for l in model.spec if any(True for _ in model.net.get_submodule(l.name).parameters())]


def randomized(model: TrainedModel, layers: list[str], seed: int = 0) -> TrainedModel:
    """A copy of ``model`` whose ``layers`` are re-initialised from ``seed``; ``model`` is untouched.

    Only the randomized layers are copied: the copy's ``nn.Sequential`` holds the same
    module objects as ``model`` for the other layers (so :func:`~.base.shared_forward` can
    run what they share once); any other network is copied whole.
    """
    clone = copy.copy(model)
    clone.net = copy_layers(model.net, layers).eval()
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for name in layers:
            module = clone.net.get_submodule(name)
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return clone


def copy_layers(net: nn.Module, layers: list[str]) -> nn.Module:
    """``net`` with fresh copies of ``layers``: a new ``nn.Sequential`` sharing the other
    children when ``net`` is one with every name of ``layers`` among its children, else a
    deep copy."""
    names = dict(net.named_children())
    if not isinstance(net, nn.Sequential) or not set(layers) <= set(names):
        return copy.deepcopy(net)
    return nn.Sequential(OrderedDict((n, copy.deepcopy(m) if n in layers else m) for n, m in names.items()))


def method_maps(cls, models: list[TrainedModel], batch: np.ndarray, target: np.ndarray,
                options: dict) -> list[np.ndarray]:
    """``cls``'s maps of ``batch`` for each of ``models`` (the same spec), as float32 (N, H, W).

    ``options["steps"]`` may hold one number per image (integrated gradients: the steps
    each image's trained map needed); the images with the same number run together.
    Methods with ``maps_of_nets`` (occlusion) explain all models in one pass.
    """
    steps = options.get("steps")
    if np.ndim(steps) == 1:
        steps = np.asarray(steps)
        out = [np.empty((len(batch), *batch.shape[1:3]), np.float32) for _ in models]
        for k in np.unique(steps):
            idx = np.flatnonzero(steps == k)
            for o, maps in zip(out, method_maps(cls, models, batch[idx], target[idx], {**options, "steps": int(k)})):
                o[idx] = maps
        return out
    with cls(models[0], **options) as e:
        if hasattr(e, "maps_of_nets"):
            return e.maps_of_nets([m.net for m in models], batch, target)
    out = []
    for m in models:
        with cls(m, **options) as e:
            out.append(e(batch, target=target))
    return out


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row pair of (N, P) arrays; NaN where a row is constant."""
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Structural similarity of two (H, W) maps in [0, 1] (Gaussian window, Wang et al. 2004)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    blur = lambda z: ndimage.gaussian_filter(z, sigma, mode="reflect")  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def unit_scaled(maps: np.ndarray) -> np.ndarray:
    """|maps| (N, H, W) divided by each map's largest value (constant maps stay 0)."""
    a = np.abs(maps).astype(np.float64)
    top = a.reshape(len(a), -1).max(1).reshape(-1, 1, 1)
    return np.divide(a, top, out=np.zeros_like(a), where=top > 0)


@dataclass
class Randomization:
    """The comparisons of one method: arrays are (seeds, steps, images), NaN for constant maps."""

    method: str
    mode: str
    steps: list[str]                  # what is random at each step, e.g. "linear2 .. conv1"
    seeds: list[int]
    spearman_abs: np.ndarray
    spearman: np.ndarray
    ssim: np.ndarray
    constant_trained: int             # images whose trained map is constant (left out)
    constant_randomized: int          # randomized maps that came out constant
    randomized_maps: int
    threshold: float = THRESHOLD
    per_step: list[dict] = field(default_factory=list)

    def __post_init__(self):
        mean = lambda a: float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")  # noqa: E731
        self.per_step = [{"randomized": s, "spearman_abs": mean(self.spearman_abs[:, i]),
                          "spearman": mean(self.spearman[:, i]), "ssim": mean(self.ssim[:, i])}
                         for i, s in enumerate(self.steps)]

    @property
    def final(self) -> float:
        """Mean Spearman of |maps| with every layer random (cascading) or over all layers (independent)."""
        a = self.spearman_abs[:, -1] if self.mode == "cascading" else self.spearman_abs
        return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")

    @property
    def verdict(self) -> str:
        if not np.isfinite(self.final):
            return "undecided"
        if self.mode != "cascading":
            return "n/a"
        return "passes" if self.final < self.threshold else "fails"

    def summary(self) -> dict:
        return {"mode": self.mode, "seeds": self.seeds, "threshold": self.threshold,
                "final_spearman_abs": self.final, "verdict": self.verdict,
                "constant_trained": self.constant_trained, "constant_randomized": self.constant_randomized,
                "randomized_maps": self.randomized_maps, "steps": self.per_step}


def randomization_check(model, images, method: str, *, mode: str = "cascading", seeds=(0, 1, 2),
                        target=None, trained_maps: np.ndarray | None = None, **options) -> Randomization:
    """Compare ``method``'s maps of ``model`` with those of copies with randomized layers.

    ``target``: the class per image (the trained model's prediction by default), kept for
    every randomized copy; ``trained_maps``: the trained model's maps when already computed.
    """
    if mode not in MODES:
        raise ModelError(f"randomization mode must be one of {', '.join(MODES)}, got {mode!r}")
    model = as_model(model)
    batch, _ = as_images(model, images)
    target = model.predict(batch) if target is None else np.asarray(target)
    cls = get_method(method)
    layers = parameter_layers(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant maps are counted below, not warned one by one
        if trained_maps is None:
            trained_maps = method_maps(cls, [model], batch, target, options)[0]
        if mode == "cascading":
            plans = [layers[len(layers) - k:] for k in range(1, len(layers) + 1)]
            steps = [layers[-1] if k == 1 else f"{layers[-1]} .. {layers[len(layers) - k]}"
                     for k in range(1, len(layers) + 1)]
        else:
            plans, steps = [[name] for name in layers], list(layers)
        flat = trained_maps.reshape(len(batch), -1)
        dead = constant_maps(trained_maps)
        scaled = unit_scaled(trained_maps)
        shape = (len(seeds), len(plans), len(batch))
        rho_abs, rho, sim = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
        constant = 0
        copies = [randomized(model, plan, seed) for seed in seeds for plan in plans]
        for n, maps in enumerate(method_maps(cls, copies, batch, target, options)):
            si, pi = divmod(n, len(plans))
            gone = constant_maps(maps) | dead
            constant += int(constant_maps(maps).sum())
            other = maps.reshape(len(batch), -1)
            rho_abs[si, pi] = np.where(gone, np.nan, spearman_rows(np.abs(flat), np.abs(other)))
            rho[si, pi] = np.where(gone, np.nan, spearman_rows(flat, other))
            rs = unit_scaled(maps)
            sim[si, pi] = [np.nan if g else ssim(a, b) for g, a, b in zip(gone, scaled, rs)]
    return Randomization(method, mode, steps, list(seeds), rho_abs, rho, sim, int(dead.sum()), constant,
                         len(seeds) * len(plans) * len(batch))

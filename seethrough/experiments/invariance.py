"""Invariance: accuracy as the test images are shifted, rotated, scaled and made noisy.

Each transform is applied to the whole test split at a series of strengths, and the model's
accuracy is measured at each. A shift moves an image by the level in pixels across, down or
both (one of the 8 directions, drawn per image); shift, rotation and scale are one affine resampling of the batch
(bilinear; the part of the frame the image no longer covers is black, 0); the direction of a
shift and the sense of a rotation are drawn per image from a fixed seed, so every run sees the
same moved images. Noise adds Gaussian noise of the given standard deviation in pixel units
(0..255) and clips. The table answers "does a CNN recognise a moved or turned object?", run
against run: logistic regression against a CNN, with and without augmentation.

    >>> from seethrough.experiments.invariance import invariance    # doctest: +SKIP
    >>> result = invariance({"lr": lr_model, "cnn": cnn_model}, {"lr": test, "cnn": test})
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import ImageDataset
from ..errors import SeethroughError

TRANSFORMS = ("shift", "rotate", "scale", "noise")
UNITS = {"shift": "pixels", "rotate": "degrees", "scale": "factor", "noise": "std (0-255)"}
IDENTITY = {"shift": 0, "rotate": 0, "scale": 1.0, "noise": 0}


def default_levels(kind: str, side: int) -> list[float]:
    """The strengths tried for ``kind``; shifts go up to 3/8 of the image side."""
    if kind == "shift":
        return sorted(set(int(round(v)) for v in np.linspace(0, max(2, side * 3 // 8), 6)))
    if kind == "rotate":
        return [0, 15, 30, 45, 60, 90, 180]
    if kind == "scale":
        return [0.5, 0.7, 0.85, 1.0, 1.2, 1.5]
    if kind == "noise":
        return [0, 16, 32, 64, 96, 128]
    raise SeethroughError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")


def transform(images: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """uint8 (N, H, W, C) images -> the same images shifted/rotated/scaled/noisy by ``level``."""
    if level == IDENTITY.get(kind):
        return images
    rng = np.random.default_rng(seed)
    n, h, w, _ = images.shape
    if kind == "noise":
        noisy = images.astype(np.float32) + rng.normal(0, level, images.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    theta = np.zeros((n, 2, 3), np.float32)  # maps output coordinates (-1..1) to input coordinates
    if kind == "shift":
        steps = np.array([(x, y) for x in (-1, 0, 1) for y in (-1, 0, 1) if x or y])
        dx, dy = (level * steps[rng.integers(0, 8, n)]).T  # per image: level pixels across, down or both
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2], theta[:, 1, 2] = -2 * dx / w, -2 * dy / h
    elif kind == "rotate":
        a = np.radians(level) * rng.choice([-1, 1], n)
        theta[:, 0, 0], theta[:, 0, 1] = np.cos(a), -np.sin(a) * h / w
        theta[:, 1, 0], theta[:, 1, 1] = np.sin(a) * w / h, np.cos(a)
    elif kind == "scale":
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / level
    else:
        raise SeethroughError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")
    return _resample(images, theta)


def _resample(images: np.ndarray, theta: np.ndarray) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()  # (N, C, H, W)
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def sample(test: ImageDataset, limit: int | None, seed: int = 0) -> ImageDataset:
    """At most ``limit`` test images, stratified (all of them when ``limit`` is None or larger)."""
    if limit is None or limit >= len(test):
        return test
    from .learning_curve import stratified_subset

    return test.subset(stratified_subset(test.labels, limit, seed))


def invariance(models: dict, tests: dict, transforms=TRANSFORMS, levels: dict | None = None,
               seed: int = 0, log=None) -> dict:
    """Accuracy of each model under each transform at each level.

    Parameters
    ----------
    models : dict of str to TrainedModel
        Name (e.g. the run folder) -> model.
    tests : dict of str to ImageDataset
        Name -> the test images for that model, at its input size.
    transforms : list of str
        Some of ``TRANSFORMS``.
    levels : dict of str to list, optional
        Strengths per transform; :func:`default_levels` for those not given.

    Returns
    -------
    dict with ``rows`` (run, transform, level, accuracy), ``levels``, ``units`` and ``runs``.
    """
    transforms = list(transforms) or list(TRANSFORMS)
    for kind in transforms:
        if kind not in TRANSFORMS:
            raise SeethroughError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")
    log = log or (lambda text: None)
    rows, used = [], {}
    for name, model in models.items():
        test = tests[name]
        side = min(test.image_shape[:2])
        for kind in transforms:
            lv = list((levels or {}).get(kind) or default_levels(kind, side))
            used.setdefault(kind, lv)
            for level in lv:
                moved = transform(np.asarray(test.images), kind, level, seed)
                acc = float((model.predict(moved) == test.labels).mean())
                rows.append({"run": name, "transform": kind, "level": level, "accuracy": acc})
            log(f"{name}: {kind} " + "  ".join(f"{r['level']:g}:{r['accuracy']:.0%}"
                                                for r in rows if r["run"] == name and r["transform"] == kind))
    return {"experiment": "invariance", "runs": list(models), "transforms": transforms, "levels": used,
            "units": {k: UNITS[k] for k in transforms}, "n_test": {k: len(v) for k, v in tests.items()},
            "seed": seed, "rows": rows}

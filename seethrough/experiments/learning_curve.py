"""Learning curves: test accuracy against the number of training images.

For each model, each training-set size and each seed, a stratified subset of that size is drawn
from the training split, a fresh model is trained on it for about the same number of optimizer
steps whatever the size (so a small subset is not also under-trained), and its accuracy on the
whole test split is measured. The table answers "does a CNN need a large data set?": from how many
images does it overtake logistic regression?

    >>> from seethrough.experiments.learning_curve import learning_curve    # doctest: +SKIP
    >>> result = learning_curve(train, test, ["logreg", "smallcnn"], [50, 100, 200], seeds=3)
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from ..data.dataset import ImageDataset
from ..errors import SeethroughError


def default_sizes(n_train: int, n_classes: int, count: int = 5) -> list[int]:
    """``count`` sizes spaced evenly on a log scale from 5 images per class (or an eighth of the
    split if that is less, but at least one per class) to all of them."""
    low = min(n_train, max(n_classes, min(5 * n_classes, n_train // 8)))
    sizes = np.geomspace(low, n_train, count)
    out = [int(float(f"{s:.2g}")) for s in sizes[:-1]] + [n_train]  # round to 2 digits, keep "all" exact
    return sorted(set(min(max(s, n_classes), n_train) for s in out))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of ``size`` examples with the class proportions of ``labels`` (all of them if size >= N)."""
    if size >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    return np.sort(idx)


def train_model(model_name: str, data: ImageDataset, *, steps: int, batch_size: int, lr: float, seed: int):
    """Train a fresh ``model_name`` on ``data`` for about ``steps`` optimizer steps; return the TrainedModel.

    The one place the experiments train a model: through the training pipeline, writing no run folder.
    """
    from ..config import TrainConfig
    from ..pipeline import RunOptions, train_run

    epochs = max(1, math.ceil(steps / math.ceil(len(data) / batch_size)))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=0.0, seed=seed)
    return train_run({"train": data}, model_name, config, RunOptions()).model


# a worker process keeps the data sets it was given once, not once per task
_DATA: dict = {}


def _init_worker(train, test, threads):
    import torch

    torch.set_num_threads(threads)
    _DATA.update(train=train, test=test)


def _run_one(task: dict) -> dict:
    train, test = _DATA["train"], _DATA["test"]
    t0 = time.perf_counter()
    sub = train.subset(stratified_subset(train.labels, task["size"], task["seed"]))
    model = train_model(task["model"], sub, steps=task["steps"], batch_size=task["batch_size"],
                        lr=task["lr"], seed=task["seed"])
    accuracy = float((model.predict(test.images) == test.labels).mean())
    return {"model": task["model"], "size": len(sub), "seed": task["seed"], "accuracy": accuracy,
            "seconds": round(time.perf_counter() - t0, 3)}


def summarize(rows: list[dict], models: list[str]) -> list[dict]:
    """Mean, standard deviation, min and max accuracy over the seeds, per model and size."""
    out = []
    for m in models:
        for size in sorted({r["size"] for r in rows if r["model"] == m}):
            acc = np.array([r["accuracy"] for r in rows if r["model"] == m and r["size"] == size])
            out.append({"model": m, "size": size, "mean": float(acc.mean()), "std": float(acc.std()),
                        "min": float(acc.min()), "max": float(acc.max()), "seeds": len(acc)})
    return out


def overtakes(summary: list[dict], base: str, other: str) -> int | None:
    """The smallest size from which ``other``'s mean accuracy beats ``base``'s at every larger size."""
    mean = {(r["model"], r["size"]): r["mean"] for r in summary}
    sizes = sorted({s for m, s in mean if m == base} & {s for m, s in mean if m == other})
    found = None
    for size in reversed(sizes):
        if mean[(other, size)] > mean[(base, size)]:
            found = size
        else:
            break
    return found


def learning_curve(train: ImageDataset, test: ImageDataset, models=("logreg", "smallcnn"), sizes=None,
                   seeds: int = 3, *, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
                   jobs: int | None = None, log=None) -> dict:
    """Train every model on every size with ``seeds`` seeds; return the table as data.

    Parameters
    ----------
    train, test : ImageDataset
        Subsets are drawn from ``train``; every model is scored on all of ``test``.
    models : list of str
        Model names (or JSON spec files); the first is the baseline the others are compared to.
    sizes : list of int, optional
        Training-set sizes; :func:`default_sizes` when not given. Sizes above the training split are cut to it.
    seeds : int
        Seeds 0..seeds-1: each draws its own subset and its own initial weights.
    steps, batch_size, lr
        About ``steps`` Adam steps of ``batch_size`` images at learning rate ``lr`` for every run.
    jobs : int, optional
        Processes training side by side, one thread each (small models gain nothing from more
        threads, and a busy machine's threads then do not wait for each other). Default: one per
        CPU core; 1 trains in this process.

    Returns
    -------
    dict with ``rows`` (one per model, size and seed: accuracy, seconds), ``summary`` (mean, std,
    min, max over the seeds), ``overtakes`` (per model after the first: the size from which it beats
    the first model, or None) and the settings.
    """
    models = list(models)
    if not models:
        raise SeethroughError("--models: give at least one model")
    if seeds < 1:
        raise SeethroughError(f"--seeds must be at least 1, got {seeds}")
    sizes = sorted(set(min(int(s), len(train)) for s in (sizes or default_sizes(len(train), train.n_classes))))
    if sizes[0] < train.n_classes:
        raise SeethroughError(f"--sizes: {sizes[0]} is fewer images than the {train.n_classes} classes; "
                              f"a stratified subset needs at least one per class")
    from ..models import create_spec

    h, w, c = train.image_shape
    for m in models:  # a model that does not fit the data fails here, before any training
        create_spec(m, (c, h, w), train.n_classes)
    tasks = [{"model": m, "size": s, "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr}
             for s in sizes for seed in range(seeds) for m in models]
    log = log or (lambda text: None)
    jobs = min(len(tasks), jobs or os.cpu_count() or 1)
    t0 = time.perf_counter()
    rows = []
    if jobs == 1:
        _DATA.update(train=train, test=test)
        results = map(_run_one, tasks)
        rows = _collect(results, len(tasks), log)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked copy of a process whose OpenMP threads already ran can hang
        with ProcessPoolExecutor(jobs, mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(train, test, 1)) as pool:
            rows = _collect(pool.map(_run_one, tasks), len(tasks), log)
    summary = summarize(rows, models)
    return {"experiment": "learning-curve", "data": train.name, "n_train": len(train), "n_test": len(test),
            "models": models, "sizes": sizes, "seeds": seeds, "steps": steps, "batch_size": batch_size,
            "lr": lr, "jobs": jobs, "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
            "summary": summary, "overtakes": {m: overtakes(summary, models[0], m) for m in models[1:]}}


def _collect(results, total: int, log) -> list[dict]:
    rows = []
    for row in results:
        rows.append(row)
        log(f"[{len(rows)}/{total}] {row['model']:<10} {row['size']:>6} images  seed {row['seed']}  "
            f"accuracy {row['accuracy']:.2%}  ({row['seconds']:.1f} s)")
    return rows

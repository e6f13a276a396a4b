"""Training with the NumPy engine: the same options and run folder as the PyTorch loop.

``fit_numpy(model, data, config, run_dir=...)`` takes the TrainedModel made by
``seethrough.train.new_model`` (spec, preprocessing, class names, initial weights),
trains a NumPy copy of it with mini-batch SGD or Adam, and writes model.json,
model.safetensors and metrics.jsonl after every epoch, so every PyTorch-side command
(evaluate, predict, explain, report) reads the result. Augmentation, label smoothing
and resuming are PyTorch-engine features; asking for them here is an error.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np

from ..data.dataset import ImageDataset, split_indices
from ..errors import SeethroughError
from ..config import TrainConfig, unsupported
from ..run import RunFolder
from ..train.loop import lr_factor
from ..train.progress import format_row
from ..trained import TrainedModel
from .bridge import copy_to_torch, prepare, to_numpy
from .layers import SoftmaxCrossEntropy
from .model import Net
from .optim import make_optimizer


def evaluate_numpy(model: TrainedModel, net: Net, data: ImageDataset, batch_size: int = 512):
    """(mean cross-entropy, accuracy) of the NumPy ``net`` on ``data``."""
    loss_fn, loss, correct = SoftmaxCrossEntropy(), 0.0, 0
    for i in range(0, len(data), batch_size):
        y = data.labels[i:i + batch_size]
        z = net.forward(prepare(model, data.images[i:i + batch_size]))
        loss += loss_fn.forward(z, y) * len(y)
        correct += int((z.argmax(1) == y).sum())
    n = max(1, len(data))
    return loss / n, correct / n


def check_numpy_config(cfg: TrainConfig, resume: bool = False) -> TrainConfig:
    """``cfg`` checked, or SeethroughError naming the options the NumPy engine does not have.

    Which options those are is read from TrainConfig's field metadata (``engines``).
    """
    cfg = cfg.check()
    if resume:
        raise SeethroughError("--resume is not available with --engine numpy; train again or use --engine torch")
    missing = unsupported(cfg, "numpy")
    if missing:
        raise SeethroughError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not available with "
                              "--engine numpy; leave them at their defaults or use --engine torch")
    return cfg


def fit_numpy(model: TrainedModel, data: ImageDataset, config: TrainConfig | None = None, *,
              val: ImageDataset | None = None, run_dir=None, resume: bool = False, progress: bool = False,
              log=None, on_metrics=None) -> list[dict]:
    """Train ``model`` with the NumPy engine; return the per-epoch metrics (the PyTorch loop's keys).

    The trained weights are copied back into ``model.net``, so ``model`` can be saved,
    evaluated or explained as any other.
    """
    cfg = check_numpy_config(config or TrainConfig(), resume)
    log = log or (print if progress else (lambda *_: None))

    if val is None and cfg.val_fraction > 0 and len(data) >= 10:
        tr_idx, va_idx = split_indices(data.labels, cfg.val_fraction, cfg.seed)
        data, val = data.subset(tr_idx), data.subset(va_idx)
    net = to_numpy(model)
    for layer in net.layers:  # dropout draws its masks from the run's seed
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng(cfg.seed + 1)
    opt = make_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    loss_fn = SoftmaxCrossEntropy()
    rng = np.random.default_rng(cfg.seed)
    steps = math.ceil(len(data) / cfg.batch_size)
    model.meta["train"] = {**asdict(cfg), "engine": "numpy"}
    history: list[dict] = []

    for epoch in range(cfg.epochs):
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        perm = rng.permutation(len(data))
        for step in range(steps):
            opt.lr = cfg.lr * lr_factor(cfg.schedule, epoch * steps + step, cfg.epochs * steps)
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            y = data.labels[idx]
            z = net.forward(prepare(model, data.images[idx]), train=True)  # (B, K)
            loss = loss_fn.forward(z, y)
            net.backward(loss_fn.backward(), input_grad=False)
            opt.step()
            seen += len(idx)
            loss_sum += loss * len(idx)
            correct += int((z.argmax(1) == y).sum())
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen, "lr": opt.lr}
        if val is not None:
            row["val_loss"], row["val_acc"] = evaluate_numpy(model, net, val)
        row["seconds"] = time.perf_counter() - t0
        row["images_per_s"] = seen / row["seconds"]
        history.append(row)
        log(format_row(row))
        if on_metrics is not None:
            on_metrics(row)
        copy_to_torch(net, model)
        if run_dir is not None:
            RunFolder(run_dir).write_metrics(history)
            model.save(run_dir)
    copy_to_torch(net, model)
    model.net.eval()
    return history

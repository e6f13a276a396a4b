"""One training loop for every model.

``fit(model, data, config)`` trains a :class:`~seethrough.trained.TrainedModel` in place:
shuffled mini-batches of the whole data set held as a uint8 tensor, optional batched
augmentation, cross-entropy loss, a learning-rate schedule computed from the step
number, a validation split for early stopping, and, when given a run folder, a
checkpoint and a metrics line after every epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import _io
from ..data.augment import augment
from ..data.dataset import ImageDataset, split_indices
from ..errors import SeethroughError
from ..trained import TrainedModel, resolve_device, to_nchw
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import join, leaves_group
from .lookahead import Lookahead
from .precision import autocast, check_precision, resolve_precision
from .view import training_view

OPTIMIZERS = ("sgd", "adam", "adamw")
AUGMENTS = ("none", "shift", "flip", "shift+flip", "shift+flip+cutout")
SCHEDULES = ("none", "cosine", "step", "onecycle", "triangle")


@dataclass
class TrainConfig:
    """Training options; every one has a default that works for the bundled data."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    val_fraction: float = 0.1
    patience: int | None = None
    augment: str = "none"
    label_smoothing: float = 0.0
    shift: int | None = None  # pixels the "shift" augmentation moves images by; None: an eighth of the side
    lookahead: bool = False   # every 5 steps average the weights with a slow copy (see .lookahead)
    bias_lr_scale: float = 1.0  # learning rate of batch-norm biases x this (decay per step unchanged)
    head_lr_scale: float = 1.0  # learning rate of the last linear layer x this (decay per step unchanged)
    body_lr_scale: float | None = None  # learning rate of every layer but the last linear x this; None: 0.1 for
    #                                     weights copied by --from (seethrough.transfer), else 1
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # "bf16": mixed precision (see .precision); "auto": bf16 where the hardware has it

    def check(self) -> "TrainConfig":
        if self.optimizer not in OPTIMIZERS:
            raise SeethroughError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise SeethroughError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.augment not in AUGMENTS:
            raise SeethroughError(f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SeethroughError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise SeethroughError(f"--lr must be positive, got {self.lr}")
        check_precision(self.precision)
        if self.shift is not None and self.shift < 0:
            raise SeethroughError(f"--shift must be 0 or more pixels, got {self.shift}")
        for name in ("bias_lr_scale", "head_lr_scale") + (("body_lr_scale",) if self.body_lr_scale is not None else ()):
            if not getattr(self, name) > 0:
                raise SeethroughError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise SeethroughError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total``."""
    t = step / max(1, total)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "step":
        return 0.1 ** int(t * 3)  # /10 at one third and two thirds of training
    if schedule == "onecycle":  # linear warm-up over the first 20 %, then linear decay to 0
        return t / 0.2 if t < 0.2 else max(0.0, (1 - t) / 0.8)
    if schedule == "triangle":  # airbench's: from 0.2 up to 1 at 23 %, then down to 0.07 at the end
        return float(np.interp(t, [0.0, 0.23, 1.0], [0.2, 1.0, 0.07]))
    return 1.0


def param_groups(net, cfg: TrainConfig) -> list[dict]:
    """The parameters in groups, each with an ``lr_scale`` that multiplies the learning rate.

    With ``bias_lr_scale`` or ``head_lr_scale`` set, batch-norm biases and the last linear layer
    form groups of their own (airbench's trick: biases learn 64x faster, and the head 81x slower,
    which is what scaling the logits by 1/9 does). ``body_lr_scale`` multiplies every group but the
    head (a network started from another run's weights learns its copied layers slower). A group's weight decay is divided by its scale,
    so the decay per step (learning rate x weight decay) is the same for every parameter.
    """
    params = list(net.parameters())
    body = 1.0 if cfg.body_lr_scale is None else cfg.body_lr_scale  # the copied layers of a --from run
    if cfg.bias_lr_scale == 1 and cfg.head_lr_scale == 1 and body == 1:
        return [{"params": params, "lr_scale": 1.0, "weight_decay": cfg.weight_decay}]
    biases = [m.bias for m in net.modules()
              if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) and m.bias is not None]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    head = list(linears[-1].parameters()) if linears else []
    taken = {id(p) for p in biases + head}
    groups = [(biases, cfg.bias_lr_scale * body), (head, cfg.head_lr_scale),
              ([p for p in params if id(p) not in taken], body)]
    return [{"params": ps, "lr_scale": scale, "weight_decay": cfg.weight_decay / scale} for ps, scale in groups if ps]


def make_optimizer(net, cfg: TrainConfig) -> torch.optim.Optimizer:
    # fused: one kernel updates every parameter (the same arithmetic as the loop over them, fewer passes)
    fused = next(net.parameters()).device.type in ("cpu", "cuda") or None
    groups = param_groups(net, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, fused=fused)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, fused=fused)


@torch.no_grad()
def evaluate_tensors(model: TrainedModel, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024):
    """(mean loss, accuracy) of ``model`` on uint8 (N, C, H, W) ``x`` and labels ``y``."""
    model.net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        out = model.net(model.prepare(x[i:i + batch_size]))
        yb = y[i:i + batch_size]
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
    n = max(1, len(x))
    return loss / n, correct / n


class _Progress:
    """A rich progress bar showing epoch, loss, accuracy and images/s; silent when disabled."""

    def __init__(self, enabled: bool, epochs: int, steps: int):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("epoch {task.fields[epoch]}/" + str(epochs)), BarColumn(),
                                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.1%}  "
                                           "{task.fields[ips]:,.0f} img/s"), TimeElapsedColumn())
            self.task = self.bar.add_task("train", total=steps, epoch=0, loss=0.0, acc=0.0, ips=0.0)

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def update(self, epoch, step, steps_per_epoch, **fields):
        if self.bar:
            self.bar.update(self.task, completed=epoch * steps_per_epoch + step, epoch=epoch + 1, **fields)

    def log(self, text: str):
        if self.bar:
            self.bar.console.print(text)


@leaves_group  # distributed: ends the process group that join() below started
def fit(model: TrainedModel, data: ImageDataset, config: TrainConfig | None = None, *,
        val: ImageDataset | None = None, run_dir=None, resume: bool = False,
        progress: bool = False, on_epoch=None) -> list[dict]:
    """Train ``model`` on ``data``; return the per-epoch metrics.

    A validation part of ``config.val_fraction`` is split off ``data`` (stratified,
    by ``config.seed``) unless ``val`` is given. With ``run_dir``, the weights,
    model.json, metrics.jsonl and a checkpoint are written after every epoch, and
    ``resume=True`` continues from that checkpoint. ``on_epoch(epoch, model)`` is
    called after each epoch (used for snapshots).

    Under ``torchrun`` (``$WORLD_SIZE > 1``) every process trains its part of each
    batch with DistributedDataParallel (see :mod:`.distributed`); only rank 0 shows
    progress, calls ``on_epoch`` and writes ``run_dir``.
    """
    cfg = (config or TrainConfig()).check()
    device = resolve_device(cfg.device)
    dd = join(device)  # one process, or this rank of the process group torchrun started
    device = dd.device  # distributed on CUDA: cuda:LOCAL_RANK
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    rng = torch.Generator().manual_seed(cfg.seed)

    if val is None and cfg.val_fraction > 0 and len(data) >= 10:
        tr_idx, va_idx = split_indices(data.labels, cfg.val_fraction, cfg.seed)
        data, val = data.subset(tr_idx), data.subset(va_idx)
    x = to_nchw(data.images).to(device)  # (N, C, H, W) uint8
    y = torch.from_numpy(data.labels).to(device)
    xv = to_nchw(val.images).to(device) if val is not None else None
    yv = torch.from_numpy(val.labels).to(device) if val is not None else None

    net = model.net.to(device)
    # Convs and pools in channels_last layout ((N, H, W, C) in memory) skip oneDNN's reorders: training
    # steps of the conv nets run up to 1.44x faster on the CPU (benchmarks/train_layout.py). Undone at the end.
    fmt = torch.channels_last if any(isinstance(m, torch.nn.Conv2d) for m in net.modules()) \
        else torch.contiguous_format
    net.to(memory_format=fmt)
    opt = make_optimizer(net, cfg)
    steps = math.ceil(len(x) / cfg.batch_size)
    history: list[dict] = []
    best_loss, best_state, bad_epochs, start = math.inf, None, 0, 0
    lookahead = Lookahead(net, cfg.epochs * steps) if cfg.lookahead else None
    flips = None  # each image is mirrored in every other epoch: a fixed half in the even epochs, the rest in the
    if "flip" in cfg.augment:  # odd ones (airbench's derandomized flip), a mask drawn from the seed alone
        flips = torch.rand(len(x), generator=torch.Generator().manual_seed(cfg.seed + 1)).to(device) < 0.5
    if resume:
        if run_dir is None:
            raise SeethroughError("--resume needs a run folder")
        info, best_state = load_checkpoint(run_dir, net, opt, rng, lookahead)
        history, best_loss, bad_epochs = info["history"], info["best_loss"], info["bad_epochs"]
        start = info["epoch"] + 1
        if info.get("stopped"):
            start = cfg.epochs
    if dd.rank > 0:  # distributed: the other ranks draw their own dropout masks
        torch.manual_seed(cfg.seed + 1000 * start + dd.rank)
    train_net = dd.wrap(training_view(net))  # the same parameters (see .view); DDP averages the ranks' gradients
    model.meta["train"] = {**asdict(cfg), "precision_used": precision}

    with _Progress(progress and dd.rank == 0, cfg.epochs, steps * cfg.epochs) as bar:
        for epoch in range(start, cfg.epochs):
            net.train()
            t0, seen = time.perf_counter(), 0
            # running sums stay on the device: a .item() per step would wait for every step to finish
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            perm = torch.randperm(len(x), generator=rng).to(device)
            for step in range(steps):
                factor = lr_factor(cfg.schedule, epoch * steps + step, cfg.epochs * steps)
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * g.get("lr_scale", 1.0) * factor
                idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                xb = model.prepare(x[idx])  # (B, C, H, W) float
                if cfg.augment != "none":  # shift: random crop of a padded copy; flip: mirror half the images
                    side = xb.shape[-1]
                    pad = (cfg.shift if cfg.shift is not None else max(1, side // 8)) if "shift" in cfg.augment else 0
                    cut = 3 * side // 8 if "cutout" in cfg.augment else 0  # 12 px for 32x32 images
                    flip = flips[idx] ^ bool(epoch % 2) if flips is not None else None
                    xb = augment(xb, rng, pad=pad, flip=flip, cutout=cut)
                batch = len(idx)
                if dd.active:  # distributed: this rank's rows (augmented as a whole, so rng stays the same on all)
                    xb, idx = dd.part(xb), dd.part(idx)
                with autocast(precision, device):  # bf16: convs and linear layers in bfloat16
                    out = train_net(xb.contiguous(memory_format=fmt)).float()
                if dd.active:  # distributed: this rank's share of the batch's mean loss; DDP averages the ranks
                    loss = F.cross_entropy(out, y[idx], label_smoothing=cfg.label_smoothing,
                                           reduction="sum") * (dd.world / batch)
                else:
                    loss = F.cross_entropy(out, y[idx], label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if lookahead is not None:
                    lookahead.step(net, epoch * steps + step + 1)
                seen += len(idx)
                loss_sum += loss.detach().double() * (batch / dd.world)  # this rank's part of the loss sum
                correct += (out.detach().argmax(1) == y[idx]).sum()
                if bar.bar is not None and (step % 20 == 19 or step == steps - 1):
                    bar.update(epoch, step + 1, steps, loss=loss_sum.item() / seen, acc=correct.item() / seen,
                               ips=seen / (time.perf_counter() - t0))
            loss_sum, correct = loss_sum.item(), correct.item()
            if dd.active:  # distributed: totals over all ranks
                loss_sum, correct, seen = dd.all_sum(loss_sum, correct, seen)
            row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                   "lr": opt.param_groups[0]["lr"]}
            if xv is not None:
                row["val_loss"], row["val_acc"] = dd.evaluate(evaluate_tensors, model, xv, yv)  # split over ranks
            row["seconds"] = time.perf_counter() - t0
            row["images_per_s"] = seen / row["seconds"]
            history.append(row)
            bar.log("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))

            stop = False
            if xv is not None and cfg.patience is not None:
                if row["val_loss"] < best_loss - 1e-6:
                    best_loss, bad_epochs = row["val_loss"], 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    bad_epochs += 1
                    stop = bad_epochs >= cfg.patience
            if on_epoch is not None and dd.rank == 0:  # distributed: rank 0 alone writes
                on_epoch(epoch, model)
            if run_dir is not None and dd.rank == 0:
                info = {"epoch": epoch, "history": history, "best_loss": best_loss,
                        "bad_epochs": bad_epochs, "stopped": stop}
                save_checkpoint(run_dir, net, opt, rng, info, best_state, lookahead)
                write_metrics(run_dir, history)
                model.save(run_dir)
            if stop:
                bar.log(f"early stopping: validation loss has not improved for {cfg.patience} epochs")
                break

    if lookahead is not None:
        lookahead.finish(net)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.to(memory_format=torch.contiguous_format).eval()
    if run_dir is not None and dd.rank == 0:
        write_metrics(run_dir, history)
        model.save(run_dir)
    return history


def write_metrics(run_dir, history: list[dict]) -> None:
    import json

    _io.write_text(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def read_metrics(run_dir) -> list[dict]:
    import json

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def new_model(model_name, data: ImageDataset, *, normalize: str = "standard", seed: int = 0,
              meta=None) -> TrainedModel:
    """An untrained TrainedModel for ``model_name`` (a name, JSON spec file or layer list) fitted to ``data``.

    The weights are initialised from ``seed``; the input standardisation is measured on ``data``.
    """
    from ..models import create_spec
    from ..trained import Preprocess

    h, w, c = data.image_shape
    spec = create_spec(model_name, (c, h, w), data.n_classes)
    if normalize == "standard":
        pre = Preprocess.fit(data.images)
    elif normalize == "unit":
        pre = Preprocess.unit(c)
    else:
        raise SeethroughError(f"--normalize must be 'standard' or 'unit', got {normalize!r}")
    meta = {"model": model_name if isinstance(model_name, str) else "custom", "dataset": data.name,
            "normalize": normalize, **(meta or {})}
    torch.manual_seed(seed)
    return TrainedModel(spec, (h, w, c), data.class_names, pre, meta=meta)

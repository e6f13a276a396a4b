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
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..data.augment import augment
from ..data.dataset import ImageDataset, split_indices
from ..devices import autocast, resolve_device, resolve_precision
from ..errors import SeethroughError, TrainingStopped
from ..run import RunFolder
from ..trained import TrainedModel, to_nchw
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import Ranks, process_group
from .lookahead import Lookahead
from .progress import epoch_line, format_row
from .view import training_view

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
    """One line per epoch (with the time left) and, on a terminal, a rich progress bar; silent when disabled."""

    def __init__(self, enabled: bool, epochs: int, steps: int):
        self.bar, self.epochs, self.t0 = None, epochs, time.perf_counter()
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("epoch {task.fields[epoch]}/" + str(epochs)), BarColumn(),
                                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.1%}  "
                                           "{task.fields[ips]:,.0f} img/s"), TimeElapsedColumn(), transient=True)
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

    def epoch_done(self, row: dict, done: int, left: int):
        """One plain line for a finished epoch: its metrics and the time the remaining ``left`` epochs need."""
        if not self.bar:
            return
        per_epoch = (time.perf_counter() - self.t0) / max(1, done)
        self.log(epoch_line(row, self.epochs, left * per_epoch if left else None))

    def log(self, text: str):
        if self.bar:
            self.bar.console.print(text, highlight=False, soft_wrap=True)


@dataclass
class _Training:
    """Everything one training holds between epochs (made once by :func:`_set_up`)."""

    model: TrainedModel
    cfg: TrainConfig
    ranks: Ranks
    net: torch.nn.Module          # the model's net, on the device, in memory format ``fmt``
    train_net: torch.nn.Module    # its training view, in DDP when distributed
    fmt: torch.memory_format
    precision: str                # "fp32" or "bf16"
    opt: torch.optim.Optimizer
    rng: torch.Generator          # the shuffling and augmentation generator
    x: torch.Tensor               # (N, C, H, W) uint8 training images on the device
    y: torch.Tensor               # (N,) labels
    class_weight: torch.Tensor | None  # (K,) --class-weight: each class's loss weight (None: all 1)
    xv: torch.Tensor | None       # validation images and labels
    yv: torch.Tensor | None
    steps: int                    # optimizer steps per epoch
    lr_factors: list[float]       # the schedule's multiplier at every step of the whole training
    pad: int                      # --augment shift: pixels of padding for the random crop (0: no shift)
    cut: int                      # --augment ...cutout: side of the square cut out (0: none)
    flips: torch.Tensor | None    # (N,) bool: the images mirrored in even epochs (odd: the others)
    lookahead: Lookahead | None
    folder: RunFolder | None
    history: list[dict]
    best_loss: float = math.inf
    best_state: dict | None = None
    bad_epochs: int = 0
    start: int = 0


def _set_up(model, data, val, cfg: TrainConfig, ranks: Ranks, run_dir, resume: bool) -> _Training:
    """Split off validation, put data and net on the device, make the optimizer, restore a checkpoint."""
    device = ranks.device
    torch.manual_seed(cfg.seed)
    rng = torch.Generator().manual_seed(cfg.seed)
    if val is None and cfg.val_fraction > 0 and len(data) >= 10:
        tr_idx, va_idx = split_indices(data.labels, cfg.val_fraction, cfg.seed)
        data, val = data.subset(tr_idx), data.subset(va_idx)
    x = to_nchw(data.images).to(device)  # (N, C, H, W) uint8
    net = model.net.to(device)
    # Convs and pools in channels_last layout ((N, H, W, C) in memory) skip oneDNN's reorders: training
    # steps of the conv nets run up to 1.44x faster on the CPU (benchmarks/train_layout.py). Undone at the end.
    fmt = torch.channels_last if any(isinstance(m, torch.nn.Conv2d) for m in net.modules()) \
        else torch.contiguous_format
    net.to(memory_format=fmt)
    opt = make_optimizer(net, cfg)
    steps = math.ceil(len(x) / cfg.batch_size)
    total = cfg.epochs * steps
    side = x.shape[-1]
    pad = (cfg.shift if cfg.shift is not None else max(1, side // 8)) if "shift" in cfg.augment else 0
    flips = None  # each image is mirrored in every other epoch: a fixed half in the even epochs, the rest in the
    if "flip" in cfg.augment:  # odd ones (airbench's derandomized flip), a mask drawn from the seed alone
        flips = torch.rand(len(x), generator=torch.Generator().manual_seed(cfg.seed + 1)).to(device) < 0.5
    t = _Training(
        model=model, cfg=cfg, ranks=ranks, net=net, train_net=net, fmt=fmt,
        precision=resolve_precision(cfg.precision, device), opt=opt, rng=rng,
        x=x, y=torch.from_numpy(data.labels).to(device),
        class_weight=class_weights(cfg.class_weight, data.labels, model.class_names, device),
        xv=to_nchw(val.images).to(device) if val is not None else None,
        yv=torch.from_numpy(val.labels).to(device) if val is not None else None,
        steps=steps, lr_factors=[lr_factor(cfg.schedule, s, total) for s in range(total)],
        pad=pad, cut=3 * side // 8 if "cutout" in cfg.augment else 0,  # cutout: 12 px for 32x32 images
        flips=flips, lookahead=Lookahead(net, total) if cfg.lookahead else None,
        folder=RunFolder(run_dir) if run_dir is not None else None, history=[])
    if resume:
        _restore(t)
    if ranks.rank > 0:  # distributed: the other ranks draw their own dropout masks
        torch.manual_seed(cfg.seed + 1000 * t.start + ranks.rank)
    t.train_net = ranks.wrap(training_view(net))  # the same parameters (see .view); DDP averages the ranks' gradients
    model.meta["train"] = {**asdict(cfg), "precision_used": t.precision}
    return t


def _restore(t: _Training) -> None:
    """Continue from the run folder's checkpoint (a folder without one starts from the beginning)."""
    if t.folder is None:
        raise SeethroughError("--resume needs a run folder")
    info, t.best_state = load_checkpoint(t.folder.path, t.net, t.opt, t.rng, t.lookahead)
    t.history, t.best_loss, t.bad_epochs = info["history"], info["best_loss"], info["bad_epochs"]
    t.start = t.cfg.epochs if info.get("stopped") else info["epoch"] + 1


def balanced_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """(K,) loss weights N / (K * N_c) (scikit-learn's class_weight="balanced"): every class's images
    weigh as much in all as any other's; a class without images gets 0."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)  # (K,)
    w = np.divide(len(labels), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return torch.tensor(w, dtype=torch.float32)


def class_weights(how, labels: np.ndarray, class_names: list[str], device) -> torch.Tensor | None:
    """(K,) loss weights for ``--class-weight``: None for "none", :func:`balanced_weights` for
    "balanced", or from a ``{class: weight}`` dict (a class index or name; classes left out weigh 1)."""
    if isinstance(how, dict):
        w = torch.ones(len(class_names))
        for key, weight in how.items():
            i = key if isinstance(key, int) and 0 <= key < len(class_names) else \
                class_names.index(key) if key in class_names else None
            if i is None:
                raise SeethroughError(f"class_weight names {key!r}, which is not a class here; expected a class "
                                      f"index 0..{len(class_names) - 1} or one of: {', '.join(class_names)}")
            w[i] = float(weight)
        return w.to(device)
    return balanced_weights(labels, len(class_names)).to(device) if how == "balanced" else None


def _loss(t: _Training, out: torch.Tensor, y: torch.Tensor, batch: int) -> torch.Tensor:
    """The batch's mean cross-entropy (each image's x its class weight with --class-weight);
    distributed, this rank's share of it (DDP averages the ranks' gradients)."""
    cfg, ranks = t.cfg, t.ranks
    if t.class_weight is None and not ranks.active:
        return F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
    each = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing, reduction="none")  # (B,)
    if t.class_weight is not None:
        each = each * t.class_weight[y]
    return each.sum() * (ranks.world / batch) if ranks.active else each.mean()


def _train_epoch(t: _Training, epoch: int, bar: _Progress, stop=None) -> dict:
    """One pass over the shuffled training images; returns the epoch's metrics row."""
    cfg, ranks, device = t.cfg, t.ranks, t.ranks.device
    t.net.train()
    t0, seen = time.perf_counter(), 0
    # running sums stay on the device: a .item() per step would wait for every step to finish
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    perm = torch.randperm(len(t.x), generator=t.rng).to(device)
    for step in range(t.steps):
        if stop is not None and stop.is_set():
            raise TrainingStopped("training was cancelled")
        factor = t.lr_factors[epoch * t.steps + step]
        for g in t.opt.param_groups:
            g["lr"] = cfg.lr * g.get("lr_scale", 1.0) * factor
        idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        xb = t.model.prepare(t.x[idx])  # (B, C, H, W) float
        if cfg.augment != "none":  # shift: random crop of a padded copy; flip: mirror half the images
            flip = t.flips[idx] ^ bool(epoch % 2) if t.flips is not None else None
            xb = augment(xb, t.rng, pad=t.pad, flip=flip, cutout=t.cut)
        batch = len(idx)
        if ranks.active:  # distributed: this rank's rows (augmented as a whole, so rng stays the same on all)
            xb, idx = ranks.part(xb), ranks.part(idx)
        with autocast(t.precision, device):  # bf16: convs and linear layers in bfloat16
            out = t.train_net(xb.contiguous(memory_format=t.fmt)).float()
        loss = _loss(t, out, t.y[idx], batch)
        t.opt.zero_grad(set_to_none=True)
        loss.backward()
        t.opt.step()
        if t.lookahead is not None:
            t.lookahead.step(t.net, epoch * t.steps + step + 1)
        seen += len(idx)
        loss_sum += loss.detach().double() * (batch / ranks.world)  # this rank's part of the loss sum
        correct += (out.detach().argmax(1) == t.y[idx]).sum()
        if bar.bar is not None and (step % 20 == 19 or step == t.steps - 1):
            bar.update(epoch, step + 1, t.steps, loss=loss_sum.item() / seen, acc=correct.item() / seen,
                       ips=seen / (time.perf_counter() - t0))
    loss_sum, correct = loss_sum.item(), correct.item()
    if ranks.active:  # distributed: totals over all ranks
        loss_sum, correct, seen = ranks.all_sum(loss_sum, correct, seen)
    row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
           "lr": cfg.lr * t.lr_factors[(epoch + 1) * t.steps - 1]}  # the schedule's, before per-layer scales
    if t.xv is not None:
        row["val_loss"], row["val_acc"] = ranks.evaluate(evaluate_tensors, t.model, t.xv, t.yv)  # split over ranks
    row["seconds"] = time.perf_counter() - t0
    row["images_per_s"] = seen / row["seconds"]
    return row


def _after_epoch(t: _Training, epoch: int, row: dict, on_epoch, on_metrics) -> bool:
    """Early stopping, the epoch callback and the run folder's files; True when training should stop."""
    t.history.append(row)
    stop = False
    if t.xv is not None and t.cfg.patience is not None:
        if row["val_loss"] < t.best_loss - 1e-6:
            t.best_loss, t.bad_epochs = row["val_loss"], 0
            t.best_state = copy.deepcopy(t.net.state_dict())
        else:
            t.bad_epochs += 1
            stop = t.bad_epochs >= t.cfg.patience
    if t.ranks.rank == 0:  # distributed: rank 0 alone calls back and writes
        if on_epoch is not None:
            on_epoch(epoch, t.model)
        if on_metrics is not None:
            on_metrics(row)
        if t.folder is not None:
            info = {"epoch": epoch, "history": t.history, "best_loss": t.best_loss,
                    "bad_epochs": t.bad_epochs, "stopped": stop}
            save_checkpoint(t.folder.path, t.net, t.opt, t.rng, info, t.best_state, t.lookahead)
            t.folder.write_metrics(t.history)
            t.model.save(t.folder.path)
    return stop


def _finish(t: _Training) -> None:
    """The weights to keep (Lookahead's slow ones, early stopping's best), back in the default layout."""
    if t.lookahead is not None:
        t.lookahead.finish(t.net)
    if t.best_state is not None:
        t.net.load_state_dict(t.best_state)
    t.net.to(memory_format=torch.contiguous_format).eval()
    if t.folder is not None and t.ranks.rank == 0:
        t.folder.write_metrics(t.history)
        t.model.save(t.folder.path)


def fit(model: TrainedModel, data: ImageDataset, config: TrainConfig | None = None, *,
        val: ImageDataset | None = None, run_dir=None, resume: bool = False,
        progress: bool = False, on_epoch=None, on_metrics=None, stop=None) -> list[dict]:
    """Train ``model`` on ``data``; return the per-epoch metrics.

    A validation part of ``config.val_fraction`` is split off ``data`` (stratified,
    by ``config.seed``) unless ``val`` is given. With ``run_dir``, the weights,
    model.json, metrics.jsonl and a checkpoint are written after every epoch, and
    ``resume=True`` continues from that checkpoint. ``on_epoch(epoch, model)`` is
    called after each epoch (used for snapshots), ``on_metrics(row)`` with its metrics row
    (live progress); setting the
    ``threading.Event`` ``stop`` ends training at the next step with
    :class:`~seethrough.errors.TrainingStopped` (the last complete epoch stays on disk).

    Under ``torchrun`` (``$WORLD_SIZE > 1``) every process trains its part of each
    batch with DistributedDataParallel (see :mod:`.distributed`); only rank 0 shows
    progress, calls ``on_epoch`` and writes ``run_dir``.
    """
    cfg = (config or TrainConfig()).check()
    with process_group(resolve_device(cfg.device)) as ranks:  # one process, or this rank of torchrun's group
        t = _set_up(model, data, val, cfg, ranks, run_dir, resume)
        from .progress import progress_bar  # in a notebook, an HTML bar updated in place

        with progress_bar(progress and ranks.rank == 0, cfg.epochs, t.steps * cfg.epochs, _Progress) as bar:
            for epoch in range(t.start, cfg.epochs):
                row = _train_epoch(t, epoch, bar, stop)
                stopping = _after_epoch(t, epoch, row, on_epoch, on_metrics)
                bar.epoch_done(row, epoch + 1 - t.start, cfg.epochs - epoch - 1)
                if stopping:
                    bar.log(f"early stopping: validation loss has not improved for {cfg.patience} epochs")
                    break
        _finish(t)
    return t.history


def read_metrics(run_dir) -> list[dict]:
    """The per-epoch metrics a run folder holds (``[]`` when it has none)."""
    return RunFolder(run_dir).read_metrics()


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

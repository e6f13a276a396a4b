"""TrainConfig: the one list of training options.

Every field carries its help text (and, for options only the PyTorch loop has, ``engines``)
as dataclass field metadata. From this one list are made:

* the options of ``seethrough train`` (``cli/options.py``: ``--batch-size`` for ``batch_size``),
* the keyword parameters of :class:`seethrough.ImageClassifier` and its docstring,
* the options the NumPy engine refuses (:func:`unsupported`).

Adding an option is one field here plus its use in the loop. This module imports neither
torch nor numpy, so ``seethrough --help`` stays fast.

    >>> from seethrough.config import TrainConfig
    >>> TrainConfig(epochs=3, lr=0.01).check().epochs
    3
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .errors import SeethroughError

OPTIMIZERS = ("sgd", "adam", "adamw")
AUGMENTS = ("none", "shift", "flip", "shift+flip", "shift+flip+cutout")
SCHEDULES = ("none", "cosine", "step", "onecycle", "triangle")
PRECISIONS = ("fp32", "bf16", "auto")
CLASS_WEIGHTS = ("none", "balanced")
ENGINES = ("torch", "numpy")


def option(default, help: str, *, choices=None, engines=ENGINES, topic=None):
    """A TrainConfig field: its default, its help text, its allowed values, the engines that have it,
    and (optionally) the feature it belongs to, named in errors."""
    return field(default=default, metadata={"help": help, "choices": choices, "engines": engines, "topic": topic})


@dataclass
class TrainConfig:
    """Training options; every one has a default that works for the bundled data."""

    epochs: int = option(10, "Passes over the training images.")
    batch_size: int = option(64, "Images per optimizer step.")
    lr: float = option(1e-3, "Learning rate.")
    optimizer: str = option("adam", "Optimizer.", choices=OPTIMIZERS)
    momentum: float = option(0.9, "Momentum of sgd (Nesterov), in [0, 1).")
    weight_decay: float = option(0.0, "Weight decay (L2 penalty), 0 or more.")
    schedule: str = option("none", "Learning-rate schedule over the steps.", choices=SCHEDULES)
    val_fraction: float = option(0.1, "Part of the training data held out for validation, in [0, 1).")
    patience: int | None = option(None, "Stop after this many epochs without a better validation loss "
                                        "(best weights kept).", engines=("torch",))
    augment: str = option("none", "Batched augmentation; flips alternate: each image is mirrored "
                                  "in every other epoch.", choices=AUGMENTS, engines=("torch",))
    label_smoothing: float = option(0.0, "Label smoothing of the cross-entropy, in [0, 1).", engines=("torch",))
    class_weight: str | dict = option("none", "balanced: weigh each image's loss by N / (classes x images of its "
                                              "class), so that every class counts the same however few its "
                                              "images (in Python also a {class: weight} dict).",
                                      choices=CLASS_WEIGHTS, engines=("torch",))
    shift: int | None = option(None, "Pixels --augment shift moves images by (default: an eighth of the side).",
                               engines=("torch",))
    lookahead: bool = option(False, "Every 5 steps restart the weights from a slow average of them (Lookahead).",
                             engines=("torch",))
    bias_lr_scale: float = option(1.0, "Learning rate of batch-norm biases x this (weight decay per step "
                                       "unchanged).", engines=("torch",),
                                  topic="per-layer learning rates")
    head_lr_scale: float = option(1.0, "Learning rate of the last linear layer x this (weight decay per step "
                                       "unchanged).", engines=("torch",),
                                  topic="per-layer learning rates")
    body_lr_scale: float | None = option(None, "Learning rate of every layer but the last linear x this, for a "
                                               "network started --from another (default then 0.1; else 1).",
                                         engines=("torch",), topic="per-layer learning rates")
    head_epochs: int | None = option(None, "For a network started --from another (not --freeze): first train "
                                           "only its new last layer for this many epochs, at 10x the learning "
                                           "rate, then every layer for --epochs (default then 5; else 0).",
                                     engines=("torch",), topic="per-layer learning rates")
    seed: int = option(0, "Seed of the weights, the shuffling and the splits (same seed, same metrics on the CPU).")
    device: str = option("auto", "cpu, cuda (or cuda:N) or auto.")
    precision: str = option("fp32", "bf16: mixed precision; auto: bf16 where the CPU or GPU does it natively.",
                            choices=PRECISIONS)

    def check(self) -> "TrainConfig":
        """This config, or SeethroughError naming the first option with a value it cannot take."""
        for f in fields(self):
            choices = f.metadata["choices"]
            if f.name == "class_weight" and isinstance(self.class_weight, dict):  # {class: weight}, from Python
                _need(self, f.name, all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0
                                        for w in self.class_weight.values()), "weights 0 or more")
            elif choices and getattr(self, f.name) not in choices:
                raise SeethroughError(f"{label(f.name)} must be one of {', '.join(choices)}, "
                                      f"got {getattr(self, f.name)!r}")
        for name in ("epochs", "batch_size"):
            _need(self, name, getattr(self, name) >= 1, "at least 1")
        _need(self, "lr", math.isfinite(self.lr) and self.lr > 0, "positive and finite")
        _need(self, "momentum", math.isfinite(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)")
        _need(self, "weight_decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0, "0 or more")
        _need(self, "label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)")
        _need(self, "val_fraction", 0 <= self.val_fraction < 1, "in [0, 1)")
        _need(self, "patience", self.patience is None or self.patience >= 1, "at least 1")
        _need(self, "shift", self.shift is None or self.shift >= 0, "0 or more pixels")
        _need(self, "head_epochs", self.head_epochs is None or self.head_epochs >= 0, "0 or more")
        for name in ("bias_lr_scale", "head_lr_scale") + (("body_lr_scale",) if self.body_lr_scale is not None else ()):
            _need(self, name, math.isfinite(getattr(self, name)) and getattr(self, name) > 0, "positive and finite")
        return self


def flag(name: str) -> str:
    """The command-line spelling of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def label(name: str) -> str:
    """How an error names field ``name``: its flag, and its Python name where the two differ."""
    return flag(name) if "_" not in name else f"{flag(name)} / {name}"


def _need(cfg: TrainConfig, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise SeethroughError(f"{label(name)} must be {expected}, got {getattr(cfg, name)}")


def unsupported(cfg: TrainConfig, engine: str) -> list[str]:
    """The options set away from their default that ``engine`` does not have, as command-line flags."""
    return [flag(f.name) + (f" ({f.metadata['topic']})" if f.metadata["topic"] else "") for f in fields(cfg)
            if engine not in f.metadata["engines"] and getattr(cfg, f.name) != f.default]


def help_text(name: str) -> str:
    """The help text of field ``name``, with its choices."""
    f = FIELDS[name]
    choices = f.metadata["choices"]
    return f.metadata["help"] + (f" One of: {', '.join(choices)}." if choices else "")


FIELDS = {f.name: f for f in fields(TrainConfig)}

"""Named training presets: a model and the options that train it well and fast on one data set.

    seethrough train cifar10 --recipe fast
    seethrough train mnist --recipe fast --epochs 4      # options given on the command line win

    >>> from seethrough.recipes import get_recipe
    >>> get_recipe("cifar10", "keras").model
    'seed-cnn'

Each recipe was tuned on a validation split of the training data, never on the test split.
The fast ones follow published techniques for fast CIFAR-10 training (Keller Jordan, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", arXiv 2404.00498): a first 2x2 convolution fixed to
whiten the image patches, batch norm after every conv, SGD with Nesterov momentum under a
one-cycle schedule, label smoothing, random crops and flips on whole batches, and test-time
flipping (``TrainedModel.predict_tta``). The CIFAR-10 recipes train as airbench94 itself does
(``models.surgery.airbench_init``, per-layer learning-rate scales, Lookahead; see ``_AIRBENCH``).

A recipe holds a :class:`~seethrough.config.TrainConfig`; options given on the command line replace
its fields (``Recipe.merge``, with ``dataclasses.replace``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .errors import SeethroughError
from .models.surgery import AIRBENCH_HEAD_SCALE, airbench_init, whiten_first_conv


@dataclass(frozen=True)
class Recipe:
    name: str
    data: tuple[str, ...]    # data set names (and folder names) it is meant for
    description: str
    model: str               # the registered model it trains
    config: TrainConfig = field(default_factory=TrainConfig)
    normalize: str = "standard"  # the model's input scaling: "standard" (per-channel mean/std) or "unit" (/255)
    whiten: bool = False     # set the first conv from the training images' 2x2 patches and freeze it
    airbench_init: bool = False  # identity-initialised convs, batch-norm scales fixed at 1, a head 9x smaller
    tta: str = "none"        # scored over copies: "flip", "shift" or "flip+shift" (no flips for digits)

    def merge(self, config: TrainConfig, given) -> TrainConfig:
        """The recipe's config with the fields named in ``given`` (set by the user) taken from ``config``."""
        return replace(self.config, **{k: v for k, v in asdict(config).items() if k in given})


# "auto" precision: bfloat16 where the CPU (AMX, AVX512-BF16) or GPU does it natively, else float32
_FAST_SGD = dict(optimizer="sgd", momentum=0.9, schedule="onecycle", precision="auto")

# airbench94's optimizer (arXiv 2404.00498) in per-image-mean units: its lr 11.5 and weight decay 0.0153 "per
# 1024 examples" with a summed loss are lr 1.5 and weight decay 0.0153 / 11.5 here; batch-norm biases learn
# 64x faster, the head 81x slower (its logits x 1/9); Lookahead; 2-pixel shifts and alternating flips.
_AIRBENCH = dict(optimizer="sgd", momentum=0.85, schedule="triangle", precision="auto", batch_size=1024, lr=1.5,
                 weight_decay=0.0153 / 11.5, augment="shift+flip", shift=2, label_smoothing=0.2, lookahead=True,
                 bias_lr_scale=64.0, head_lr_scale=AIRBENCH_HEAD_SCALE ** 2, val_fraction=0.0)

RECIPES: list[Recipe] = [
    Recipe("keras", ("cifar10", "cifar10-jpeg"),
           "the TensorFlow CNN tutorial: seed-cnn, Adam 1e-3, batch 64, /255, 10 epochs, all 50,000 images",
           "seed-cnn", TrainConfig(epochs=10, batch_size=64, lr=1e-3, optimizer="adam", schedule="none",
                                   augment="none", label_smoothing=0.0, weight_decay=0.0, val_fraction=0.0,
                                   precision="auto"), normalize="unit"),
    Recipe("fast", ("cifar10", "cifar10-jpeg"),
           "fastcifar trained as airbench94 (per-layer learning rates, Lookahead, 2-pixel shifts), flip+shift TTA",
           "fastcifar", TrainConfig(**_AIRBENCH, epochs=7), whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("long", ("cifar10", "cifar10-jpeg"),
           "fastcifar-l (64-256-256) trained as airbench94 (per-layer learning rates, Lookahead) with "
           "4-pixel shifts and cutout over 50 epochs (the 45-minute goal)",
           "fastcifar-l", TrainConfig(**{**_AIRBENCH, "augment": "shift+flip+cutout", "shift": 4}, epochs=50),
           whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("backbone", ("cifar10", "cifar10-jpeg"),
           "fastcifar-gap (global average pooling: any input size) trained as airbench94 on all 50,000 "
           "images for 10 epochs: the network bundled in seethrough/weights/ (train --from cifar10)",
           "fastcifar-gap", TrainConfig(**_AIRBENCH, epochs=10), whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("fast", ("mnist",),
           "fastmnist, whitened first conv, SGD one-cycle, label smoothing, random shifts, shifted-copy TTA",
           "fastmnist", TrainConfig(**_FAST_SGD, epochs=4, batch_size=128, lr=0.2, weight_decay=5e-4,
                                    augment="shift", label_smoothing=0.1, val_fraction=0.0),
           whiten=True, tta="shift"),
    Recipe("fast", ("fashion-mnist",),
           "fastmnist, whitened first conv, SGD one-cycle, label smoothing, flips, flip TTA",
           "fastmnist", TrainConfig(**_FAST_SGD, epochs=6, batch_size=128, lr=0.2, weight_decay=5e-4,
                                    augment="flip", label_smoothing=0.1, val_fraction=0.0),
           whiten=True, tta="flip"),
]


def data_key(data) -> str:
    name = str(data)
    return Path(name).name if ("/" in name or Path(name).exists()) else name


def list_recipes() -> list[tuple[str, str, str]]:
    """(data, recipe name, description) for every recipe."""
    return [(r.data[0], r.name, r.description) for r in RECIPES]


def get_recipe(data, name: str) -> Recipe:
    """The recipe ``name`` for data set (or folder) ``data``; SeethroughError naming the choices."""
    key = data_key(data)
    for r in RECIPES:
        if r.name == name and key in r.data:
            return r
    choices = ", ".join(f"{d} --recipe {n}" for d, n, _ in list_recipes())
    raise SeethroughError(f"--recipe {name!r}: no such recipe for {key!r}; expected one of: {choices}")


def prepare_model(recipe: Recipe, model, train_images: np.ndarray) -> None:
    """What a recipe does to a new model before training (whitening, airbench's initialisation)."""
    if recipe.airbench_init:
        airbench_init(model)
    if recipe.whiten:
        whiten_first_conv(model, train_images)
    model.meta["recipe"] = recipe.name

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
flipping (``predict_tta``). The CIFAR-10 recipes train as airbench94 itself does
(``airbench_init``, per-layer learning-rate scales, Lookahead; see ``_AIRBENCH``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import SeethroughError

# TrainConfig fields and train options a recipe may set.
OPTIONS = ("model_name", "normalize", "epochs", "batch_size", "lr", "optimizer", "momentum",
           "weight_decay", "schedule", "augment", "label_smoothing", "val_fraction", "precision",
           "shift", "lookahead", "bias_lr_scale", "head_lr_scale")


@dataclass(frozen=True)
class Recipe:
    name: str
    data: tuple[str, ...]    # data set names (and folder names) it is meant for
    description: str
    options: dict = field(default_factory=dict)   # OPTIONS -> value
    whiten: bool = False     # set the first conv from the training images' 2x2 patches and freeze it
    airbench_init: bool = False  # identity-initialised convs, batch-norm scales fixed at 1, a head 9x smaller
    tta: str = "none"        # scored over copies: "flip", "shift" or "flip+shift" (no flips for digits)
    threads: int | None = None

    @property
    def model(self) -> str:
        return self.options["model_name"]


# "auto" precision: bfloat16 where the CPU (AMX, AVX512-BF16) or GPU does it natively, else float32
_FAST_SGD = {"optimizer": "sgd", "momentum": 0.9, "schedule": "onecycle", "normalize": "standard",
             "precision": "auto"}

# airbench94's optimizer (arXiv 2404.00498) in per-image-mean units: its lr 11.5 and weight decay 0.0153 "per
# 1024 examples" with a summed loss are lr 1.5 and weight decay 0.0153 / 11.5 here; batch-norm biases learn
# 64x faster, the head 81x slower (its logits x 1/9); Lookahead; 2-pixel shifts and alternating flips.
AIRBENCH_HEAD_SCALE = 1 / 9  # airbench's logits x 1/9: a head that starts this much smaller and learns its square slower
_AIRBENCH = {"optimizer": "sgd", "momentum": 0.85, "schedule": "triangle", "normalize": "standard",
             "precision": "auto", "batch_size": 1024, "lr": 1.5, "weight_decay": 0.0153 / 11.5,
             "augment": "shift+flip", "shift": 2, "label_smoothing": 0.2, "lookahead": True,
             "bias_lr_scale": 64.0, "head_lr_scale": AIRBENCH_HEAD_SCALE ** 2, "val_fraction": 0.0}

RECIPES: list[Recipe] = [
    Recipe("keras", ("cifar10", "cifar10-jpeg"),
           "the TensorFlow CNN tutorial: seed-cnn, Adam 1e-3, batch 64, /255, 10 epochs, all 50,000 images",
           {"model_name": "seed-cnn", "normalize": "unit", "epochs": 10, "batch_size": 64, "lr": 1e-3,
            "optimizer": "adam", "schedule": "none", "augment": "none", "label_smoothing": 0.0,
            "weight_decay": 0.0, "val_fraction": 0.0, "precision": "auto"}),
    Recipe("fast", ("cifar10", "cifar10-jpeg"),
           "fastcifar trained as airbench94 (per-layer learning rates, Lookahead, 2-pixel shifts), flip+shift TTA",
           {**_AIRBENCH, "model_name": "fastcifar", "epochs": 7},
           whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("long", ("cifar10", "cifar10-jpeg"),
           "fastcifar-l (64-256-256) trained as airbench94 (per-layer learning rates, Lookahead) with "
           "4-pixel shifts and cutout over 50 epochs (the 45-minute goal)",
           {**_AIRBENCH, "model_name": "fastcifar-l", "epochs": 50, "augment": "shift+flip+cutout", "shift": 4},
           whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("backbone", ("cifar10", "cifar10-jpeg"),
           "fastcifar-s-gap (global average pooling: any input size) trained as airbench94 on all 50,000 "
           "images for 1 epoch: the network bundled in seethrough/weights/ (train --from cifar10)",
           {**_AIRBENCH, "model_name": "fastcifar-s-gap", "epochs": 1},
           whiten=True, airbench_init=True, tta="flip+shift"),
    Recipe("fast", ("mnist",),
           "fastmnist, whitened first conv, SGD one-cycle, label smoothing, random shifts, shifted-copy TTA",
           {**_FAST_SGD, "model_name": "fastmnist", "epochs": 4, "batch_size": 128, "lr": 0.2,
            "weight_decay": 5e-4, "augment": "shift", "label_smoothing": 0.1, "val_fraction": 0.0},
           whiten=True, tta="shift"),
    Recipe("fast", ("fashion-mnist",),
           "fastmnist, whitened first conv, SGD one-cycle, label smoothing, flips, flip TTA",
           {**_FAST_SGD, "model_name": "fastmnist", "epochs": 6, "batch_size": 128, "lr": 0.2,
            "weight_decay": 5e-4, "augment": "flip", "label_smoothing": 0.1, "val_fraction": 0.0},
           whiten=True, tta="flip"),
]


def _data_key(data) -> str:
    name = str(data)
    return Path(name).name if ("/" in name or Path(name).exists()) else name


def list_recipes() -> list[tuple[str, str, str]]:
    """(data, recipe name, description) for every recipe."""
    return [(r.data[0], r.name, r.description) for r in RECIPES]


def get_recipe(data, name: str) -> Recipe:
    """The recipe ``name`` for data set (or folder) ``data``; SeethroughError naming the choices."""
    key = _data_key(data)
    for r in RECIPES:
        if r.name == name and key in r.data:
            return r
    choices = ", ".join(f"{d} --recipe {n}" for d, n, _ in list_recipes())
    raise SeethroughError(f"--recipe {name!r}: no such recipe for {key!r}; expected one of: {choices}")


def merge_options(recipe: Recipe, params: dict, given: set) -> dict:
    """``params`` with the recipe's value for every option not in ``given`` (set by the user)."""
    out = dict(params)
    for k, v in recipe.options.items():
        if k not in given:
            out[k] = v
    return out


@torch.no_grad()
def whiten_first_conv(model, images: np.ndarray, eps: float = 5e-4, limit: int = 10000) -> None:
    """Set the first layer (a k x k conv with 2*C*k*k outputs) to whiten the data's k x k patches.

    The patch covariance is Sigma = V diag(lambda) V^T; the filters are
    ``+-diag(1/sqrt(lambda + eps)) V^T`` (both signs, so a ReLU after keeps all of it), the
    bias centres the output, and the weights are frozen: only the bias trains.
    """
    conv = model.net[0]
    c, kh, kw = conv.in_channels, *conv.kernel_size
    d = c * kh * kw
    if not isinstance(conv, torch.nn.Conv2d) or conv.out_channels != 2 * d:
        raise SeethroughError(f"whitening needs a first conv with {2 * d} outputs, got {conv}")
    x = model.prepare(images[:limit]).cpu()                       # (N, C, H, W)
    patches = F.unfold(x, (kh, kw)).transpose(1, 2).reshape(-1, d).double()  # (N*L, C*kh*kw)
    mean = patches.mean(0)
    cov = torch.cov(patches.T)                                    # (d, d)
    lam, vec = torch.linalg.eigh(cov)                             # ascending eigenvalues
    w = vec.T / torch.sqrt(lam + eps)[:, None]                    # (d, d): rows are filters
    weight = torch.cat([w, -w]).float()                           # (2d, d)
    conv.weight.copy_(weight.view(2 * d, c, kh, kw).to(conv.weight.device))
    if conv.bias is not None:
        conv.bias.copy_((-weight.double() @ mean).float().to(conv.bias.device))
    freeze(model, [f"{model.spec[0].name}.weight"])


def freeze(model, names: list[str]) -> None:
    """Keep parameters ``names`` out of training; recorded in model.json so a resumed run keeps them too."""
    model.meta["frozen"] = sorted(set(model.meta.get("frozen", [])) | set(names))
    params = dict(model.net.named_parameters())
    for name in names:
        params[name].requires_grad_(False)


@torch.no_grad()
def airbench_init(model, head_scale: float = AIRBENCH_HEAD_SCALE) -> None:
    """airbench's initialisation (arXiv 2404.00498), three steps:

    * identity: in every 3x3 conv with at least as many outputs as inputs, output channel i
      starts as a copy of input channel i (a Dirac kernel), the rest keep their random start;
    * batch-norm scales are fixed at 1 (frozen); only the shifts (biases) train;
    * the last linear layer starts ``head_scale`` times its random start. Together with
      ``head_lr_scale = head_scale**2`` in training, this trains exactly as airbench's logits
      multiplied by 1/9 do, while the saved model stays a plain linear layer.
    """
    frozen, modules = [], dict(model.net.named_modules())
    for name, m in modules.items():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.out_channels >= m.in_channels:
            torch.nn.init.dirac_(m.weight[:m.in_channels])
        if isinstance(m, torch.nn.BatchNorm2d) and m.weight is not None:
            m.weight.fill_(1.0)
            frozen.append(f"{name}.weight")
    linears = [m for m in modules.values() if isinstance(m, torch.nn.Linear)]
    if linears:
        linears[-1].weight.mul_(head_scale)
    freeze(model, frozen)


def prepare_model(recipe: Recipe, model, train_images: np.ndarray) -> None:
    """What a recipe does to a new model before training (whitening, airbench's initialisation)."""
    if recipe.airbench_init:
        airbench_init(model)
    if recipe.whiten:
        whiten_first_conv(model, train_images)
    model.meta["recipe"] = recipe.name


TTA_VIEWS = ("flip", "shift", "flip+shift")


def predict_tta(model, images: np.ndarray, batch_size: int = 1000, views: str = "flip") -> np.ndarray:
    """Class probabilities averaged over copies of each uint8 (N, H, W, C) image (test-time augmentation).

    ``views``: "flip" averages the image and its mirror image; "shift" the image and two copies
    moved by one pixel (up-left and down-right, reflect-padded); "flip+shift" all six.
    """
    if views not in TTA_VIEWS:
        raise SeethroughError(f"views must be one of {', '.join(TTA_VIEWS)}, got {views!r}")
    h, w = images.shape[1:3]
    copies = [images]
    if "shift" in views:
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")  # (N, H+2, W+2, C)
        copies += [padded[:, :h, :w], padded[:, 2:, 2:]]
    if "flip" in views:
        copies += [c[:, :, ::-1] for c in copies]
    probs = sum(torch.from_numpy(model.logits(np.ascontiguousarray(c), batch_size)).softmax(1) for c in copies)
    return (probs / len(copies)).numpy()


def run_recipe(data, name: str, *, data_dir=None, seed: int = 0, tune: bool = False, progress: bool = False,
               run_dir=None, **overrides) -> dict:
    """Load ``data``, train its recipe ``name`` and score it; returns a dict of results and timings.

    With ``tune=True`` a stratified tenth of the training images is held out and scored instead
    of the test split (the way the recipes were tuned). ``overrides`` replace recipe options.
    The wall time counts loading, whitening, training and scoring.
    """
    import time

    from .data import load_splits
    from .train import TrainConfig, fit, new_model

    t0 = time.perf_counter()
    recipe = get_recipe(data, name)
    opts = merge_options(recipe, overrides, set(overrides))
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    parts = load_splits(data, data_dir=data_dir, seed=seed)
    train, test = parts["train"], parts["test"]
    if tune:
        train, test = train.split(0.1, seed=seed)
    t_load = time.perf_counter() - t0
    model = new_model(opts["model_name"], train, normalize=opts["normalize"], seed=seed)
    prepare_model(recipe, model, train.images)
    cfg = TrainConfig(**{k: v for k, v in opts.items() if k not in ("model_name", "normalize")},
                      seed=seed, device="cpu")
    t1 = time.perf_counter()
    history = fit(model, train, cfg, run_dir=run_dir, progress=progress)
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    acc = float((model.predict(test.images) == test.labels).mean())
    acc_tta = None
    if recipe.tta != "none":
        acc_tta = float((predict_tta(model, test.images, views=recipe.tta).argmax(1) == test.labels).mean())
    t_score = time.perf_counter() - t2
    return {"recipe": f"{_data_key(data)} --recipe {name}", "model": model, "history": history,
            "split": "validation" if tune else "test", "accuracy": acc, "accuracy_tta": acc_tta,
            "final": acc if acc_tta is None else acc_tta, "tta": recipe.tta,
            "seconds_load": t_load, "seconds_train": t_train, "seconds_score": t_score,
            "seconds_total": time.perf_counter() - t0, "epochs": cfg.epochs, "threads": torch.get_num_threads()}

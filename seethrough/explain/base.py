"""The base of every attribution method: hooks, the target class, the layer, batching.

An :class:`Explainer` wraps a :class:`~seethrough.trained.TrainedModel` and turns uint8
(N, H, W, C) images into float32 (N, H, W) maps at the model's input resolution. It
owns three choices every method shares:

- the **target**: the predicted class by default, or any class by index or name,
  one for the whole batch or one per image;
- the **layer** (for methods that look inside, such as Grad-CAM): the last conv layer
  by default, any layer with a spatial map on request;
- the **score** that is explained: the target class's logit; for a model with two
  classes the difference of the two logits (the log-odds), so that a model whose
  logits are [0, z] explains its first class with the negated map of its second
  instead of an empty one;
- the **space** of gradients (methods with ``space=``): "pixels" (default) takes the
  gradient with respect to the 0..255 pixels, "standardised" with respect to the
  model's standardised input (pixels minus the training mean, over the std);
- the **hooks**: forward hooks that record a layer's output and a hook on that output
  that records its gradient. They are removed after every call, also when it fails,
  and the explainer is a context manager that removes any that remain.

Images are processed ``batch_size`` at a time, and methods that run many copies of an
image (SmoothGrad, integrated gradients, occlusion) split those copies so that one
forward pass holds at most ``max_elements`` input values (2^20: a few hundred CIFAR-size
images, which keeps the activations in the CPU's cache better than larger passes):
memory stays bounded on large images. On the CPU, image batches go through the network
in channels-last memory order (:func:`run_net`): oneDNN's convolutions are 2-3x faster
so, and the values agree to rounding.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DataError, ModelError
from ..trained import TrainedModel


def as_model(obj) -> TrainedModel:
    """A TrainedModel, or an estimator holding one as ``model_`` (e.g. ImageClassifier)."""
    model = getattr(obj, "model_", obj)
    if not isinstance(model, TrainedModel):
        raise ModelError(f"expected a TrainedModel or a fitted estimator with .model_, got {type(obj).__name__}")
    return model


def as_images(model: TrainedModel, images) -> tuple[np.ndarray, bool]:
    """Paths, arrays or a batch -> uint8 (N, H, W, C) for ``model``; and whether one image was given."""
    h, w, c = model.input_shape
    if isinstance(images, (str, Path)):
        return np.array(model.to_input(images))[None], True
    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4:
        if images.shape[1:] != (h, w, c):
            raise DataError(f"image batch has shape {images.shape[1:]}, the model expects {h}x{w}x{c}; "
                            "pass the images one by one to have them converted")
        return images, False
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        return np.array(model.to_input(images))[None], True
    if isinstance(images, (list, tuple)):
        if not images:
            raise DataError("no images given")
        return np.stack([model.to_input(im) for im in images]), False
    raise DataError(f"cannot read an image from {type(images).__name__}; "
                    "expected a path, an (H, W[, C]) array or an (N, H, W, C) uint8 batch")


def net_dtype(net) -> torch.dtype:
    """The float type of ``net``'s weights (float32 unless a test made it float64)."""
    return next((p.dtype for p in net.parameters()), torch.float32)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A 4-d CPU batch (N, C, H, W) in channels-last memory order (same shape and values)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 and x.device.type == "cpu" else x


def run_net(net, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` with x in channels-last order on the CPU (:func:`channels_last`)."""
    return net(channels_last(x))


def shared_forward(nets, x: torch.Tensor) -> list[torch.Tensor]:
    """``[net(x) for net in nets]``, running once each leading layer that several nets share.

    Nets share a layer when their ``nn.Sequential`` holds the same module object at the
    same place after the same modules before it, as the randomized copies of
    :func:`~seethrough.explain.randomization.randomized` do below their first random layer.
    Other nets run one by one.
    """
    if not all(isinstance(n, nn.Sequential) and len(n) == len(nets[0]) for n in nets):
        return [run_net(n, x) for n in nets]
    outs: list = [None] * len(nets)

    def descend(group: list[int], depth: int, h: torch.Tensor) -> None:
        if depth == len(nets[0]):
            for g in group:
                outs[g] = h
            return
        branches: dict[int, list[int]] = {}
        for g in group:
            branches.setdefault(id(nets[g][depth]), []).append(g)
        for k, members in enumerate(branches.values()):
            module = nets[members[0]][depth]
            shared_input = k < len(branches) - 1 and getattr(module, "inplace", False)
            descend(members, depth + 1, module(h.clone() if shared_input else h))

    descend(list(range(len(nets))), 0, channels_last(x))
    return outs


class ConstantMapWarning(UserWarning):
    """A method's map came out constant (e.g. all zero): it shows nothing."""


SPACES = ("pixels", "standardised")


def check_space(method: str, space: str) -> str:
    if space not in SPACES:
        raise ModelError(f"{method}: space must be one of {', '.join(SPACES)}, got {space!r}")
    return space


def constant_maps(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) -> bool (N,): True where a map has one value everywhere (or is not finite)."""
    flat = maps.reshape(len(maps), -1)
    return ~np.isfinite(flat).all(1) | (flat.max(1) == flat.min(1))


class Explainer:
    """Base class. Subclasses set ``name``, ``paper`` and implement :meth:`attribute`."""

    name = ""
    paper = ""
    signed = False          # True when the map has meaningful negative values
    own_prediction = False  # True when attribute() accepts target=None: the argmax of its forward on x
    uses_layer = False      # True when the method reads a hidden layer (``layer=``)

    def __init__(self, model, *, layer: str | None = None, batch_size: int = 32,
                 max_elements: int = 2 ** 20, **options):
        self.model = as_model(model)
        self.net = self.model.net
        self.batch_size = max(1, int(batch_size))
        self.max_elements = int(max_elements)
        type(self).check_model(self.model)
        self.layer = self.check_layer(layer) if self.uses_layer else None
        self.options = self.check_options(**options)
        self._handles: list = []
        self.diagnostics: list[dict] = []  # per image, for methods that report one (integrated gradients)
        self.activations: dict[str, torch.Tensor] = {}
        self.gradients: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------ applicability
    @classmethod
    def check_model(cls, model: TrainedModel) -> None:
        """Raise ModelError when this method cannot explain ``model``."""

    def check_options(self, **options) -> dict:
        if options:
            raise ModelError(f"method {self.name}: unknown option(s) {', '.join(options)}")
        return {}

    # ------------------------------------------------------------------ layers
    def spatial_layers(self) -> list[str]:
        """Layers whose output is an image-shaped (C, H, W) map."""
        from ..models import infer_shapes

        shapes = infer_shapes(self.model.spec, self.model.in_chw)
        return [l.name for l, s in zip(self.model.spec, shapes) if len(s) == 3]

    def check_layer(self, layer: str | None) -> str:
        convs = [l.name for l in self.model.spec if l.kind == "conv"]
        if layer is None:
            if not convs:
                raise ModelError(f"{self.name} needs a conv layer and this model "
                                 f"({self.model.meta.get('model', 'custom')}) has none; try --method saliency")
            return convs[-1]
        names = [l.name for l in self.model.spec]
        if layer not in names:
            raise ModelError(f"no layer named {layer!r}; layers: {', '.join(names)}")
        spatial = self.spatial_layers()
        if layer not in spatial:
            raise ModelError(f"layer {layer!r} has no spatial map; choose one of {', '.join(spatial) or '(none)'}")
        return layer

    # ------------------------------------------------------------------ hooks
    def capture(self, layer: str) -> None:
        """Record ``layer``'s output (forward hook) and its gradient (hook on that output)."""
        def forward_hook(module, inputs, output):
            self.activations[layer] = output
            if output.requires_grad:
                def grad_hook(grad):
                    self.gradients[layer] = grad
                output.register_hook(grad_hook)
        self._handles.append(self.net.get_submodule(layer).register_forward_hook(forward_hook))

    def release(self) -> None:
        """Remove every hook and drop the recorded tensors."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.activations.clear()
        self.gradients.clear()

    @contextmanager
    def hooked(self, *layers: str):
        try:
            for layer in layers:
                self.capture(layer)
            yield self
        finally:
            self.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    # ------------------------------------------------------------------ targets
    def resolve_target(self, target, n: int) -> list | None:
        """None (predicted), an index, a name, or one of those per image -> list of int or None."""
        if target is None:
            return None
        items = list(target) if isinstance(target, (list, tuple, np.ndarray)) else [target] * n
        if len(items) != n:
            raise ModelError(f"got {len(items)} targets for {n} images")
        names = self.model.class_names
        out = []
        for t in items:
            if t is None:
                out.append(None)
            elif isinstance(t, (int, np.integer)) and not isinstance(t, bool):
                if not 0 <= t < len(names):
                    raise ModelError(f"target class index {t} is out of range 0..{len(names) - 1}")
                out.append(int(t))
            elif str(t) in names:
                out.append(names.index(str(t)))
            elif str(t).isdigit() and int(t) < len(names):
                out.append(int(t))
            else:
                raise ModelError(f"unknown target class {t!r}; classes: {', '.join(names)}")
        return out

    @staticmethod
    def pick(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The explained score of each row, (N, K), (N,) -> (N,): the target's logit; with two
        classes the target's logit minus the other one (the log-odds, which softmax depends on)."""
        own = logits.gather(1, target[:, None])[:, 0]
        if logits.shape[1] == 2:
            return own - logits.gather(1, (1 - target)[:, None])[:, 0]
        return own

    def pixel_std(self, x: torch.Tensor) -> torch.Tensor:
        """The standardisation's std per channel, (1, C, 1, 1): d input / d pixel = 1 / std."""
        std = torch.tensor(self.model.preprocess.std, dtype=x.dtype, device=x.device)
        return std.view(1, -1, 1, 1)

    def in_space(self, grad: torch.Tensor, space: str) -> torch.Tensor:
        """A gradient taken w.r.t. the standardised input, in ``space`` ("pixels": divided by std)."""
        return grad / self.pixel_std(grad) if space == "pixels" else grad

    def targets_for(self, x: torch.Tensor, target: list | None) -> torch.Tensor | None:
        """Target indices (N,) for prepared input x: given ones, else the predicted class.

        None when no target is given and the method finds the predicted class in its own
        forward pass on x (``own_prediction``), which saves one forward pass.
        """
        if target is not None and all(t is not None for t in target):
            return torch.tensor(target, device=x.device)
        if target is None and self.own_prediction:
            return None
        with torch.no_grad():
            pred = run_net(self.net, x).argmax(1)
        if target is None:
            return pred
        return torch.tensor([p if t is None else t for p, t in zip(pred.tolist(), target)], device=x.device)

    # ------------------------------------------------------------------ running
    def chunk(self, per_item: int = 1) -> int:
        """How many inputs of this model fit in one forward pass under ``max_elements``."""
        c, h, w = self.model.in_chw
        return max(1, self.max_elements // (c * h * w * max(1, per_item)))

    def __call__(self, images, target=None) -> np.ndarray:
        """float32 (N, H, W) maps for uint8 (N, H, W, C) images (or one (H, W) map for one image)."""
        batch, single = as_images(self.model, images)
        targets = self.resolve_target(target, len(batch))
        self.net.eval()
        self.diagnostics = []
        out = []
        step = min(self.batch_size, self.chunk())
        try:
            for i in range(0, len(batch), step):
                x = self.model.prepare(batch[i:i + step]).to(net_dtype(self.net))  # (B, C, H, W)
                t = self.targets_for(x, None if targets is None else targets[i:i + step])
                out.append(self.attribute(x, t).detach().float().cpu().numpy())
        finally:
            self.release()
        maps = np.concatenate(out).astype(np.float32)
        for i in np.flatnonzero(constant_maps(maps)):
            warnings.warn(ConstantMapWarning(
                f"{self.name}: the map of image {i} is constant ({float(maps[i].flat[0]):g} everywhere), "
                "so it shows nothing"), stacklevel=2)
        return maps[0] if single else maps

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Prepared input (B, C, H, W), target indices (B,) -> maps (B, H, W).

        ``target`` is None only for methods with ``own_prediction``.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def input_gradient(self, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """d score[target] / d x for prepared (standardised) x (B, C, H, W), split to bound memory.

        ``target`` None: each row's own predicted class. :meth:`in_space` turns it into
        the gradient with respect to the pixels.
        """
        grads = []
        step = self.chunk()
        for i in range(0, len(x), step):
            xi = x[i:i + step].detach().requires_grad_(True)
            logits = run_net(self.net, xi)
            score = self.pick(logits, logits.argmax(1) if target is None else target[i:i + step]).sum()
            grads.append(torch.autograd.grad(score, xi)[0])
        return torch.cat(grads)  # (B, C, H, W)

"""TrainedModel: a spec, its weights, and how raw images become its input.

This is what a run folder holds and what every later step (evaluate, predict,
explain, report, serve) works with. ``model.json`` stores everything but the
weights; ``model.safetensors`` stores the weights under the spec's layer names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import _io, fused
from .__version__ import __version__
from .devices import autocast, resolve_device, resolve_precision
from .data.images import IMAGE_RULE, array_to_input, load_image
from .errors import RunError, SeethroughError
from .models import build_torch, make_spec, spec_to_json
from .run import CORE_KEYS, FORMAT_VERSION, RunFacts, RunFolder



@dataclass
class Preprocess:
    """Per-channel standardisation, in pixel units (0..255): ``(x - mean) / std``."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, images: np.ndarray) -> "Preprocess":
        """Mean and std of each channel of uint8 (N, H, W, C) images."""
        x = images.reshape(-1, images.shape[-1]).astype(np.float64)
        std = x.std(0)
        return cls(x.mean(0).tolist(), np.where(std > 1e-6, std, 1.0).tolist())

    @classmethod
    def unit(cls, channels: int) -> "Preprocess":
        """Plain ``x / 255`` scaling."""
        return cls([0.0] * channels, [255.0] * channels)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or float (N, C, H, W) -> standardised float32 (N, C, H, W)."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        return (x.float() - mean) / std


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) array -> uint8 (N, C, H, W) tensor, without copying when possible."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


class TrainedModel:
    """A network with everything needed to feed it raw images and name its outputs.

    Parameters
    ----------
    spec : list of Layer
    input_shape : (H, W, C)
    class_names : list of str
    preprocess : Preprocess
    net : torch.nn.Module, optional
        Built from ``spec`` (randomly initialised) when not given.
    meta : dict, optional
        Free-form facts saved in model.json (model name, data set, training options).
        ``meta["frozen"]`` lists parameters that training leaves alone (e.g. a whitening conv).
    """

    def __init__(self, spec, input_shape, class_names, preprocess: Preprocess, net=None, meta=None):
        self.spec = make_spec(spec)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.class_names = [str(c) for c in class_names]
        self.preprocess = preprocess
        self.net = net if net is not None else build_torch(self.spec, self.in_chw)
        self.meta = dict(meta or {})
        for name, param in self.net.named_parameters():
            if name in self.meta.get("frozen", ()):
                param.requires_grad_(False)
        self._fused = fused.Cache()  # logits' CPU plan

    @property
    def facts(self) -> RunFacts:
        """What model.json records about where this model came from (data, size, seed, recipe)."""
        return RunFacts.of(self.meta)

    @property
    def in_chw(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        return (c, h, w)

    def _repr_html_(self) -> str:  # the layer table in a notebook
        return model_html(self)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    # ------------------------------------------------------------------ inputs
    def to_input(self, image) -> np.ndarray:
        """A path or an array of any size or mode -> uint8 (H, W, C) for this model."""
        if isinstance(image, (str, Path)):
            return load_image(image, self.input_shape)
        return array_to_input(image, self.input_shape)

    def prepare(self, images) -> torch.Tensor:
        """uint8 (N, H, W, C) array or (N, C, H, W) tensor -> float (N, C, H, W) on the model's device."""
        return self.preprocess(self._raw(images))

    def _raw(self, images) -> torch.Tensor:
        """Like :meth:`prepare`, before the standardisation: (N, C, H, W), uint8 from an array."""
        if isinstance(images, np.ndarray):
            if images.ndim == 3:
                images = images[None]
            images = to_nchw(images)
        return images.to(self.device)

    # ------------------------------------------------------------------ outputs
    def _forward(self, precision: str = "fp32"):
        """What :meth:`logits` runs on raw (N, C, H, W) images: the fused CPU plan of
        :mod:`seethrough.fused` where it applies (built on first use, rebuilt when the weights or
        the preprocessing change; not while forward hooks are on the net), else the eager net
        (under bf16 autocast for ``precision="bf16"``)."""
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        plan = None if fused.has_hooks(self.net) else self._fused.get(self.net, self.preprocess, self.in_chw, dtype)
        if plan is not None:
            return plan

        def eager(x):
            with autocast(precision, self.device):
                return self.net(self.prepare(x))
        return eager

    @torch.inference_mode()
    def logits(self, images: np.ndarray, batch_size: int = 512, precision: str = "fp32") -> np.ndarray:
        """Raw scores, float32 (N, n_classes).

        ``precision="bf16"`` computes in bfloat16 (several times faster on CPUs with AMX, the scores
        differ from float32's in about the third significant digit); "auto" picks it where the
        hardware does bfloat16 natively (see :mod:`seethrough.devices`).
        """
        self.net.eval()
        forward = self._forward(resolve_precision(precision, self.device))
        out = [forward(self._raw(images[i:i + batch_size])).float().cpu()
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.class_names)), np.float32)

    @property
    def temperature(self) -> float:
        """The softmax temperature fitted on the validation split (1.0 when none was fitted)."""
        return float((self.meta.get("calibration") or {}).get("temperature", 1.0))

    def predict_proba(self, images: np.ndarray, batch_size: int = 512, precision: str = "fp32",
                      calibrated: bool = True) -> np.ndarray:
        """Class probabilities (N, K): ``softmax(logits / T)`` with the fitted temperature
        (:mod:`seethrough.calibrate`); ``calibrated=False`` gives the raw softmax."""
        z = self.logits(images, batch_size, precision) / (self.temperature if calibrated else 1.0)
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.logits(images).argmax(1)

    def predict_tta(self, images: np.ndarray, views: str = "flip", batch_size: int = 1000) -> np.ndarray:
        """Class probabilities averaged over flipped and/or shifted copies (see :func:`predict_tta`)."""
        return predict_tta(self, images, batch_size=batch_size, views=views)

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict:
        return {
            "format": "seethrough-run",
            "format_version": FORMAT_VERSION,
            "seethrough_version": __version__,
            "spec": spec_to_json(self.spec),
            "input_shape": list(self.input_shape),
            "class_names": self.class_names,
            "preprocess": {**asdict(self.preprocess), "image_rule": IMAGE_RULE},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self.meta,
        }

    def save(self, run_dir) -> Path:
        """Write model.json and model.safetensors into ``run_dir`` (each atomically)."""
        folder = RunFolder(run_dir)
        folder.path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        with _io.atomic_path(folder.weights) as tmp:
            save_file(state, str(tmp), metadata={"format": "seethrough-run"})
        _io.write_json(folder.model_json, self.to_json())
        return folder.path

    @classmethod
    def load(cls, run_dir, device: str = "cpu") -> "TrainedModel":
        """Read a run folder written by :meth:`save`; raises RunError if it can't."""
        folder = RunFolder(run_dir)
        if not folder.path.is_dir():
            raise RunError(f"{folder.path}: no such run folder")
        info = folder.read_model_json()
        weights = folder.weights
        if not weights.is_file():
            raise RunError(f"{weights}: missing; the run folder has no trained weights")
        check_facts(folder.model_json, info)
        meta = {k: v for k, v in info.items() if k not in CORE_KEYS}
        try:
            model = cls(info["spec"], info["input_shape"], info["class_names"],
                        Preprocess(info["preprocess"]["mean"], info["preprocess"]["std"]), meta=meta)
        except SeethroughError as exc:
            raise RunError(f"{folder.model_json}: {exc}") from None
        model.net.load_state_dict(read_weights(weights, model.net.state_dict()))
        model.net.to(resolve_device(device)).eval()
        return model


def read_weights(path: Path, expected: dict) -> dict:
    """The tensors of a safetensors file, checked against ``expected`` (a state dict); RunError in one line.

    Refuses a file that is not safetensors or is cut short, a missing or unexpected tensor, a tensor
    of another shape, and weights that are not finite (NaN or infinite: the model would predict nothing).
    """
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for a damaged header or length
        raise RunError(f"{path}: not a readable safetensors file ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else 'damaged'})") from None
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = "; ".join(x for x in (f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")
                                     if missing else "",
                                     f"unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else "")
                                     if extra else "") if x)
        raise RunError(f"{path}: weights do not match model.json's spec ({what})")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise RunError(f"{path}: weights do not match model.json's spec ({k} has shape "
                           f"{tuple(state[k].shape)}, the spec needs {tuple(v.shape)})")
        if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all()):
            raise RunError(f"{path}: {k} holds NaN or infinite values; the run's weights are broken "
                           "(retrain, or resume from an earlier checkpoint)")
    return state


def _numbers(v, n: int) -> bool:
    return (isinstance(v, list) and len(v) == n
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v))


def check_facts(path: Path, info: dict) -> None:
    """Refuse, in one line, a model.json whose input shape, class names, preprocessing or spec cannot be used."""
    from .models.spec import check_output, infer_shapes

    shape = info["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(d) is int and 1 <= d <= 65536 for d in shape)
            and shape[2] in (1, 3)):
        raise RunError(f"{path}: input_shape must be [height, width, channels] with 1 or 3 channels, got {shape!r}")
    names = info["class_names"]
    if not (isinstance(names, list) and names and all(isinstance(c, str) for c in names)):
        raise RunError(f"{path}: class_names must be a list of names, got {names!r}"[:300])
    pre, c = info["preprocess"], shape[2]
    if not (isinstance(pre, dict) and _numbers(pre.get("mean"), c) and _numbers(pre.get("std"), c)
            and all(x > 0 for x in pre["std"])):
        raise RunError(f"{path}: preprocess must be {{\"mean\": [{c} numbers], \"std\": [{c} positive numbers]}}, "
                       f"got {pre!r}"[:300])
    try:
        spec = make_spec(info["spec"])
        out = infer_shapes(spec, (c, shape[0], shape[1]))[-1]
        if tuple(out) == (len(names),):
            check_output(spec, (c, shape[0], shape[1]), len(names))  # the parameter bound
    except SeethroughError as exc:
        raise RunError(f"{path}: {exc}") from None
    if tuple(out) != (len(names),):
        raise RunError(f"{path}: the spec gives {'x'.join(map(str, out))} scores per image but class_names "
                       f"has {len(names)} names; they must match")


# ---------------------------------------------------------------------- test-time augmentation
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


# ---------------------------------------------------------------------- in a notebook
def model_html(model) -> str:
    """A TrainedModel as its layer table, with the input and the parameter count."""
    from .htmlparts import esc, table, wrap
    from .models.spec import describe

    rows = describe(model.spec, model.in_chw)
    total = sum(r["params"] for r in rows)
    h, w, c = model.input_shape
    body = [[r["name"], r["layer"], " x ".join(map(str, r["output_shape"])), f"{r['params']:,}"] for r in rows]
    name = model.meta.get("model", "custom")
    data = model.meta.get("dataset")
    head = (f"<h3>TrainedModel: {esc(name)}</h3><p class=\"note\">input {h}x{w}x{c}"
            f"{', trained on ' + esc(data) if data else ''}; {len(model.class_names)} classes: "
            f"{esc(', '.join(model.class_names[:12]))}{' ...' if len(model.class_names) > 12 else ''}</p>")
    return wrap(head, table(["layer", "spec", "output (C x H x W)", "parameters"], body),
                 f'<p class="note">{total:,} parameters in all</p>')

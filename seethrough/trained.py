"""TrainedModel: a spec, its weights, and how raw images become its input.

This is what a run folder holds and what every later step (evaluate, predict,
explain, report, serve) works with. ``model.json`` stores everything but the
weights; ``model.safetensors`` stores the weights under the spec's layer names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import _io, fused
from .__version__ import __version__
from .data.images import IMAGE_RULE, array_to_input, load_image
from .errors import RunError, SeethroughError
from .models import build_torch, make_spec, spec_to_json

FORMAT_VERSION = 1


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


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SeethroughError(f"--device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeethroughError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(device)


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
    def in_chw(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        return (c, h, w)

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
        from .train.precision import autocast

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
        hardware does bfloat16 natively (see :mod:`seethrough.train.precision`).
        """
        from .train.precision import resolve_precision

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
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        with _io.atomic_path(run_dir / "model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"format": "seethrough-run"})
        _io.write_json(run_dir / "model.json", self.to_json())
        return run_dir

    @classmethod
    def load(cls, run_dir, device: str = "cpu") -> "TrainedModel":
        """Read a run folder written by :meth:`save`; raises RunError if it can't."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: no such run folder")
        info = read_model_json(run_dir)
        weights = run_dir / "model.safetensors"
        if not weights.is_file():
            raise RunError(f"{weights}: missing; the run folder has no trained weights")
        meta = {k: v for k, v in info.items() if k not in _CORE_KEYS}
        model = cls(info["spec"], info["input_shape"], info["class_names"],
                    Preprocess(info["preprocess"]["mean"], info["preprocess"]["std"]), meta=meta)
        try:
            model.net.load_state_dict(load_file(str(weights)))
        except Exception as exc:
            raise RunError(f"{weights}: weights do not match model.json's spec ({exc})") from None
        model.net.to(resolve_device(device)).eval()
        return model


_CORE_KEYS = {"format", "format_version", "seethrough_version", "spec", "input_shape",
              "class_names", "preprocess", "created"}


def read_model_json(run_dir) -> dict:
    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise RunError(f"{path}: missing; expected a run folder written by 'seethrough train'")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != "seethrough-run":
        raise RunError(f"{path}: not a seethrough model.json")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise RunError(f"{path}: format version {version} is not supported by seethrough "
                       f"{__version__} (expected {FORMAT_VERSION}); retrain or use a matching version")
    missing = _CORE_KEYS - {"created"} - set(info)
    if missing:
        raise RunError(f"{path}: missing keys {', '.join(sorted(missing))}")
    return info

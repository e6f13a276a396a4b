"""Export a trained model to ONNX, with its preprocessing inside the graph.

The exported graph takes what ``TrainedModel.to_input`` makes: uint8 images of shape
(N, H, W, C) (any N), and returns the logits (N, n_classes), so an ONNX runtime needs
nothing from seethrough to use it::

    seethrough export runs/cifar10-seed-cnn --format onnx     # -> runs/cifar10-seed-cnn/model.onnx

The class names and the input rule are stored in the graph's metadata. onnx and onnxruntime
are the optional extra ``pip install 'seethrough[onnx]'``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import _io
from .errors import SeethroughError
from .trained import TrainedModel

FORMATS = ("onnx",)


class _WithPreprocess(nn.Module):
    """uint8 (N, H, W, C) -> the net's logits: the same steps as ``TrainedModel.prepare``."""

    def __init__(self, model: TrainedModel):
        super().__init__()
        self.net = model.net
        c = model.input_shape[2]
        self.register_buffer("mean", torch.tensor(model.preprocess.mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(model.preprocess.std, dtype=torch.float32).view(1, c, 1, 1))

    def forward(self, images):                                  # (N, H, W, C) uint8
        x = images.permute(0, 3, 1, 2).float()                 # (N, C, H, W)
        return self.net((x - self.mean) / self.std)            # (N, n_classes)


def export_onnx(model: TrainedModel, path, opset: int = 17) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the path."""
    try:
        import onnx
    except ImportError:
        raise SeethroughError("--format onnx needs the onnx package: pip install 'seethrough[onnx]'") from None
    wrapper = _WithPreprocess(model).to("cpu").eval()
    h, w, c = model.input_shape
    example = torch.zeros(2, h, w, c, dtype=torch.uint8)
    path = Path(path)
    with _io.atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is marked deprecated
            torch.onnx.export(wrapper, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(str(tmp))
        for key, value in (("class_names", json.dumps(model.class_names)),
                           ("input", f"uint8 images (N, {h}, {w}, {c}); see model.json's preprocess.image_rule"),
                           ("producer", "seethrough")):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


def export_run(run_dir, fmt: str = "onnx", out=None) -> Path:
    """Export the run folder ``run_dir``; the file goes to ``out`` or ``run_dir/model.<fmt>``."""
    if fmt not in FORMATS:
        raise SeethroughError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model = TrainedModel.load(run_dir, device="cpu")
    return export_onnx(model, Path(out) if out else Path(run_dir) / "model.onnx")


def onnx_session(path, threads: int | None = None):
    """An onnxruntime InferenceSession for ``path`` on the CPU."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SeethroughError("running ONNX models needs onnxruntime: pip install 'seethrough[onnx]'") from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_logits(session, images: np.ndarray) -> np.ndarray:
    """Logits from an exported model for uint8 (N, H, W, C) ``images``."""
    return session.run(["logits"], {"images": np.ascontiguousarray(images, dtype=np.uint8)})[0]


def torchscript_predictor(model: TrainedModel, example_batch: int = 256):
    """A faster CPU predictor: the preprocessing wrapper traced, frozen and optimised for inference.

    ``torch.jit.optimize_for_inference`` folds batch norm into the convs and runs them through
    oneDNN with the ReLU fused. Returns ``f(uint8 (N, H, W, C) array) -> float32 logits (N, K)``.
    """
    wrapper = _WithPreprocess(model).to("cpu").eval()
    h, w, c = model.input_shape
    example = torch.zeros(example_batch, h, w, c, dtype=torch.uint8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is marked deprecated in recent torch
        traced = torch.jit.optimize_for_inference(torch.jit.trace(wrapper, example))

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return traced(torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))).numpy()

    return predict

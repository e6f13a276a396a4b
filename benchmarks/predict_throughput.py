"""Predict throughput of seed-cnn at batch 256: seethrough's own path against ONNX Runtime.

    .venv/bin/python benchmarks/predict_throughput.py [--model seed-cnn] [--run RUN] [--threads 2]

Both start from uint8 (N, 32, 32, 3) images and end with logits, preprocessing included:
seethrough through ``TrainedModel.logits`` (eager PyTorch) and through
``seethrough.export.torchscript_predictor`` (traced, frozen, oneDNN-fused), ONNX Runtime through the file that
``seethrough export`` writes. Weights come from RUN if given, else a fresh model (speed does not
depend on the values). The outputs are checked to agree before timing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from _common import machine


def images_per_s(fn, x, seconds: float) -> float:
    fn(x)  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(x)
        n += len(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="seed-cnn")
    ap.add_argument("--run", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    info, _ = machine(args.threads)
    print(info)

    from seethrough.data import ImageDataset
    from seethrough.export import export_onnx, onnx_logits, onnx_session, torchscript_predictor
    from seethrough.train import new_model
    from seethrough.trained import TrainedModel

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch, 32, 32, 3), dtype=np.uint8)
    if args.run:
        model = TrainedModel.load(args.run)
    else:
        model = new_model(args.model, ImageDataset(x, np.arange(len(x)) % 10, [str(i) for i in range(10)]))
    model.net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        sess = onnx_session(export_onnx(model, f"{tmp}/m.onnx"), threads=args.threads)
        fast = torchscript_predictor(model, args.batch)
        ref = model.logits(x, batch_size=args.batch)
        diff = max(np.abs(onnx_logits(sess, x) - ref).max(), np.abs(fast(x) - ref).max())
        rows = [("seethrough (TrainedModel.logits)",
                 images_per_s(lambda b: model.logits(b, batch_size=args.batch), x, args.seconds)),
                ("seethrough (torchscript_predictor)", images_per_s(fast, x, args.seconds)),
                ("ONNX Runtime (exported model)", images_per_s(lambda b: onnx_logits(sess, b), x, args.seconds))]
    import onnxruntime
    import torch

    print(f"{args.model}, batch {args.batch}, uint8 images in, logits out; max |difference| {diff:.2e}; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    print(f"{'path':<36} {'images/s':>10}")
    for name, ips in rows:
        print(f"{name:<36} {ips:10.0f}")
    for name, ips in rows[:2]:
        print(f"{name} / ONNX Runtime: {ips / rows[2][1]:.2f}")


if __name__ == "__main__":
    main()

"""Predict throughput of seed-cnn at batch 256: seethrough's own path against ONNX Runtime.

    .venv/bin/python benchmarks/predict_throughput.py [--model seed-cnn] [--run RUN] [--threads 2]

All paths start from uint8 (N, 32, 32, 3) images and end with logits, preprocessing included:
seethrough through ``TrainedModel.logits`` (what ``predict``, ``evaluate`` and ``serve`` run: the
fused CPU plan of ``seethrough.fused``), eager PyTorch (``net(prepare(x))``, what ``logits`` ran
before, as a reference) and ONNX Runtime through the file that ``seethrough export`` writes. On a
CPU with AMX or AVX512-BF16 it also times ``TrainedModel.logits(x, precision="bf16")``, the same
fused plan in bfloat16, and prints how far its logits are from float32's (use ``--run`` with a
trained model for an agreement figure that means something).
Weights come from RUN if given, else a fresh model (speed does not depend on the values). The
outputs are checked to agree before timing. The paths take turns (``--rounds``), so a change in
the machine's load hits them alike.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from _common import machine


def race(paths: dict, x, seconds: float, rounds: int) -> dict:
    """Images per second of each path, timed in ``rounds`` interleaved turns of ``seconds / rounds``."""
    for fn in paths.values():
        fn(x)  # warm up
    done = {name: [0, 0.0] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / rounds:
                fn(x)
                done[name][0] += len(x)
            done[name][1] += time.perf_counter() - t0
    return {name: n / t for name, (n, t) in done.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="seed-cnn")
    ap.add_argument("--run", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=5.0, help="per path, in all")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    info, _ = machine(args.threads)
    print(info)

    import onnxruntime
    import torch

    from seethrough.data import ImageDataset
    from seethrough.export import export_onnx, onnx_logits, onnx_session
    from seethrough.train import new_model
    from seethrough.devices import native_bf16
    from seethrough.trained import TrainedModel

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch, 32, 32, 3), dtype=np.uint8)
    if args.run:
        model = TrainedModel.load(args.run)
    else:
        model = new_model(args.model, ImageDataset(x, np.arange(len(x)) % 10, [str(i) for i in range(10)]))
    model.net.eval()

    def eager(images):
        with torch.no_grad():
            return model.net(model.prepare(images)).numpy()

    t0 = time.perf_counter()
    ours = model.logits(x, batch_size=args.batch)  # the first call builds the fused plan
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.logits(x, batch_size=args.batch)
    second = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        sess = onnx_session(export_onnx(model, f"{tmp}/m.onnx"), threads=args.threads)
        ref = eager(x)
        diff = max(np.abs(ours - ref).max(), np.abs(onnx_logits(sess, x) - ref).max())
        paths = {"seethrough (TrainedModel.logits)": lambda b: model.logits(b, batch_size=args.batch)}
        if native_bf16(torch.device("cpu")):
            paths["seethrough, precision='bf16'"] = lambda b: model.logits(b, batch_size=args.batch, precision="bf16")
            low = model.logits(x, batch_size=args.batch, precision="bf16")
            bf16_note = (f"bf16 logits: max |difference| to float32 {np.abs(low - ours).max():.2e} "
                         f"(largest |logit| {np.abs(ours).max():.2f}), same top class for "
                         f"{(low.argmax(1) == ours.argmax(1)).mean():.2%} of the images")
        paths["eager PyTorch (net(prepare(x)))"] = eager
        paths["ONNX Runtime (exported model)"] = lambda b: onnx_logits(sess, b)
        speed = race(paths, x, args.seconds, args.rounds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, batch {args.batch}, uint8 images in, logits out; max |difference| to eager {diff:.2e}; "
          f"first logits call {first * 1e3:.0f} ms (builds the plan), second {second * 1e3:.0f} ms; "
          f"load average after {load:.1f}; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    if "seethrough, precision='bf16'" in speed:
        print(bf16_note)
    print(f"{'path':<36} {'images/s':>10}")
    for name, ips in speed.items():
        print(f"{name:<36} {ips:10.0f}")
    onnx = speed["ONNX Runtime (exported model)"]
    for name in list(speed)[:-1]:
        print(f"{name} / ONNX Runtime: {speed[name] / onnx:.2f}")


if __name__ == "__main__":
    main()

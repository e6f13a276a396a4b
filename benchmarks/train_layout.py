"""One training step in the default (NCHW) memory layout, in channels_last, and in channels_last with bf16.

    .venv/bin/python benchmarks/train_layout.py [--threads 2] [--steps 8] [--rounds 3]

``fit`` trains nets with convolutions in channels_last layout (the parameters are converted once
and every batch is made channels_last before the forward pass) and, with ``--precision bf16`` or
``auto`` on a CPU with AMX or AVX512-BF16, under bf16 autocast. This script measures why. For each
model it times the same training step as ``fit`` (preprocess, forward through the training view,
label-smoothed cross-entropy, backward, fused SGD with Nesterov momentum) on random uint8 images,
alternating the variants for ``--rounds`` rounds so that a change in the machine's load hits all
alike, and prints the median of the rounds. The bf16 column is left out where bf16 is not native.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from _common import machine

# (model, image side, channels, batch size): the nets the recipes and the Keras comparison train
CASES = [("seed-cnn", 32, 3, 64), ("smallcnn", 32, 3, 64), ("fastcifar", 32, 3, 256), ("fastcifar-l", 32, 3, 256),
         ("fastmnist", 28, 1, 128)]


def ms_per_step(model_name, side, channels, batch, layout, precision, steps, seed=0) -> float:
    import torch
    import torch.nn.functional as F

    from seethrough.data import ImageDataset
    from seethrough.train import new_model
    from seethrough.devices import autocast
    from seethrough.train.view import training_view

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (4 * batch, side, side, channels), dtype=np.uint8)
    data = ImageDataset(images, np.arange(len(images)) % 10, [str(i) for i in range(10)])
    model = new_model(model_name, data, seed=seed)
    net = model.net.to(memory_format=layout).train()
    view = training_view(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=True)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)            # (N, C, H, W) view of NHWC memory
    y = torch.from_numpy(data.labels)

    def step(i):
        idx = torch.arange(i * batch, (i + 1) * batch) % len(x)
        xb = model.prepare(x[idx]).contiguous(memory_format=layout)  # (B, C, H, W) float
        with autocast(precision, torch.device("cpu")):
            out = view(xb).float()
        loss = F.cross_entropy(out, y[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):  # warm-up: oneDNN picks and caches its kernels
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return (time.perf_counter() - t0) / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    info, _ = machine(args.threads)
    print(info, flush=True)
    import torch

    from seethrough.devices import native_bf16

    variants = {"NCHW": (torch.contiguous_format, "fp32"), "ch.last": (torch.channels_last, "fp32")}
    if native_bf16(torch.device("cpu")):
        variants["ch.last bf16"] = (torch.channels_last, "bf16")
    head = "".join(f"{k + ' ms':>16}" for k in variants) + "".join(f"{'x ' + k:>16}" for k in list(variants)[1:])
    print(f"{'model':<12} {'input':>9} {'batch':>5}{head}")
    for name, side, channels, batch in CASES:
        times = {k: [] for k in variants}
        for _ in range(args.rounds):
            for k, (layout, precision) in variants.items():
                times[k].append(ms_per_step(name, side, channels, batch, layout, precision, args.steps))
        ms = {k: statistics.median(v) for k, v in times.items()}
        cols = "".join(f"{v:16.1f}" for v in ms.values())
        cols += "".join(f"{ms['NCHW'] / ms[k]:15.2f}x" for k in list(variants)[1:])
        print(f"{name:<12} {f'{side}x{side}x{channels}':>9} {batch:>5}{cols}", flush=True)
    print(f"median of {args.rounds} alternating rounds of {args.steps} steps; load average after "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""One training step in the default (NCHW) memory layout against channels_last, side by side.

    .venv/bin/python benchmarks/train_layout.py [--threads 2] [--steps 8] [--rounds 3]

``fit`` trains nets with convolutions in channels_last layout: the parameters are converted once
and every batch is made channels_last before the forward pass. This script measures why. For each
model it times the same training step (preprocess, forward, label-smoothed cross-entropy, backward,
SGD with Nesterov momentum) on random uint8 images, alternating the two layouts for ``--rounds``
rounds so that a change in the machine's load hits both alike, and prints the median of the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from _common import machine

# (model, image side, channels, batch size): the nets the recipes and the Keras comparison train
CASES = [("seed-cnn", 32, 3, 64), ("smallcnn", 32, 3, 64), ("fastcifar-s", 32, 3, 256), ("fastmnist", 28, 1, 128)]


def ms_per_step(model_name, side, channels, batch, layout, steps, seed=0) -> float:
    import torch
    import torch.nn.functional as F

    from seethrough.data import ImageDataset
    from seethrough.train import new_model

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (4 * batch, side, side, channels), dtype=np.uint8)
    data = ImageDataset(images, np.arange(len(images)) % 10, [str(i) for i in range(10)])
    model = new_model(model_name, data, seed=seed)
    net = model.net.to(memory_format=layout).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)            # (N, C, H, W) view of NHWC memory
    y = torch.from_numpy(data.labels)

    def step(i):
        idx = torch.arange(i * batch, (i + 1) * batch) % len(x)
        xb = model.prepare(x[idx]).contiguous(memory_format=layout)  # (B, C, H, W) float
        loss = F.cross_entropy(net(xb), y[idx], label_smoothing=0.1)
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

    layouts = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
    print(f"{'model':<12} {'input':>9} {'batch':>5} {'NCHW ms':>8} {'ch.last ms':>10} {'speed-up':>8}")
    for name, side, channels, batch in CASES:
        times = {k: [] for k in layouts}
        for _ in range(args.rounds):
            for k, layout in layouts.items():
                times[k].append(ms_per_step(name, side, channels, batch, layout, args.steps))
        a, b = statistics.median(times["NCHW"]), statistics.median(times["channels_last"])
        print(f"{name:<12} {f'{side}x{side}x{channels}':>9} {batch:>5} {a:8.1f} {b:10.1f} {a / b:7.2f}x", flush=True)
    print(f"median of {args.rounds} alternating rounds of {args.steps} steps; load average after "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

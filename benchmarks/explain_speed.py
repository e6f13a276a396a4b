"""Grad-CAM plus every layer's feature maps for one 32x32 image on seed-cnn, on CPU.

    python benchmarks/explain_speed.py [--threads N] [--repeats 200]

The goal is under 20 ms per image. Three timings, each the median of ``--repeats``
runs after a warm-up, on one random 32x32x3 uint8 image and a seed-cnn with random
weights (the time does not depend on what the weights learned):

- ``st.explain(model, image, "gradcam")`` + ``feature_maps(model, image)``: what a user calls;
- the same two on a Grad-CAM explainer built once (no per-call set-up);
- the floor: one plain PyTorch forward and backward to the last conv layer's output,
  and one forward through every layer, with no seethrough code around them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def median_ms(fn, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()

    import numpy as np
    import torch

    from seethrough.explain import explain, feature_maps, make_explainer
    from seethrough.models import create_spec
    from seethrough.trained import Preprocess, TrainedModel

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = TrainedModel(create_spec("seed-cnn", (3, 32, 32), 10), (32, 32, 3), [str(i) for i in range(10)],
                         Preprocess([125.0] * 3, [63.0] * 3))
    model.net.eval()
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)

    def user_call():
        explain(model, image, "gradcam")
        feature_maps(model, image)

    gradcam = make_explainer(model, "gradcam")

    def reused():
        gradcam(image)
        feature_maps(model, image)

    x = model.prepare(image[None])
    head, tail = model.net[:7], model.net[7:]  # conv3 is the 7th layer of seed-cnn

    def floor():
        acts = head(x)
        score = tail(acts).max()
        torch.autograd.grad(score, acts)
        with torch.no_grad():
            y = x
            for layer in model.net:
                y = layer(y)

    rows = [("st.explain gradcam + feature_maps", median_ms(user_call, args.repeats)),
            ("explainer reused + feature_maps", median_ms(reused, args.repeats)),
            ("plain torch forward/backward floor", median_ms(floor, args.repeats))]
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {platform.python_version()}")
    print(f"{'what':40s} {'median ms':>10s} {'x floor':>8s}")
    for name, ms in rows:
        print(f"{name:40s} {ms:10.2f} {ms / rows[-1][1]:8.2f}")
    goal = rows[0][1] < 20
    print(f"goal (< 20 ms for the user call): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One training step of seed-cnn, NumPy engine vs PyTorch on CPU, with the same thread count.

    python benchmarks/scratch_vs_torch.py [--threads N] [--repeats 10] [--batch 64]

A step is forward, softmax cross-entropy, backward and an SGD update (momentum 0.9) on
a batch of 32x32x3 images. Both engines start from the same weights and see the same
float32 batch; each is warmed up, then timed ``--repeats`` times, and the median is
reported. NumPy's BLAS and PyTorch are given the same number of threads (set before
NumPy is imported, so the script must be run as a fresh process).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both engines")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--model", default="seed-cnn")
    return p.parse_args()


def main() -> int:
    args = parse()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy and torch load their thread pools

    import numpy as np
    import torch
    import torch.nn.functional as F

    from seethrough.models import build_torch, create_spec
    from seethrough.scratch import Net, SoftmaxCrossEntropy
    from seethrough.scratch.optim import SGD

    torch.set_num_threads(args.threads)
    shape = (3, 32, 32)
    spec = create_spec(args.model, shape, 10)
    torch.manual_seed(0)
    tnet = build_torch(spec, shape)
    net = Net(spec, shape)
    net.load_state_dict(tnet.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch,) + shape).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
    nopt, loss_fn = SGD(net, 0.01, momentum=0.9), SoftmaxCrossEntropy()

    def torch_step():
        topt.zero_grad(set_to_none=True)
        F.cross_entropy(tnet(xt), yt).backward()
        topt.step()

    def numpy_step():
        loss_fn.forward(net.forward(x, train=True), y)
        net.backward(loss_fn.backward(), input_grad=False)
        nopt.step()

    def timed(step):
        for _ in range(2):
            step()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), min(times)

    # first check that the two engines compute the same step
    loss_t = F.cross_entropy(tnet(xt), yt).item()
    loss_n = loss_fn.forward(net.forward(x), y)
    t_med, t_min = timed(torch_step)
    n_med, n_min = timed(numpy_step)

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{args.model}, one training step (forward + loss + backward + SGD), batch {args.batch} x 32x32x3, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"cpu: {cpu}, {os.cpu_count()} logical cores; numpy {np.__version__}, torch {torch.__version__}")
    print(f"same start: loss numpy {loss_n:.6f}, torch {loss_t:.6f}")
    print(f"{'engine':<10}{'median ms':>12}{'best ms':>12}{'images/s':>12}")
    for name, med, best in (("pytorch", t_med, t_min), ("numpy", n_med, n_min)):
        print(f"{name:<10}{med * 1e3:>12.1f}{best * 1e3:>12.1f}{args.batch / med:>12.0f}")
    print(f"ratio numpy / pytorch (median): {n_med / t_med:.2f}x  (goal: within 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The machine's measured matrix-multiply peak, fp32 and bf16, with torch's CPU kernels.

    .venv/bin/python benchmarks/matmul_peak.py [--threads N] [--size 2048]

The best of several timed (size x size) @ (size x size) products; 2*size^3 FLOP each.
Other benchmarks import ``measure_peak`` to print the fraction of this peak they reach.
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_flags() -> str:
    """Which of the wide-vector and matrix extensions the CPU reports."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(f if f in flags else f"no-{f}" for f in wanted)


def measure_peak(dtype=torch.float32, size: int = 2048, seconds: float = 2.0) -> float:
    """Best achieved GFLOP/s of a square matmul of at most ``size`` in ``dtype``.

    The size is halved while one product takes over 0.5 s (bf16 without hardware support is slow).
    """
    while dtype != torch.float32 and size > 128:
        a = torch.randn(size // 4, size // 4).to(dtype)
        torch.mm(a, a)
        t0 = time.perf_counter()
        torch.mm(a, a)
        if (time.perf_counter() - t0) * 64 < 0.5:
            break
        size //= 2
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # warm up (and let oneDNN pick its kernel)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, flags: {cpu_flags()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}x{args.size} matmul")
    fp32 = measure_peak(torch.float32, args.size)
    bf16 = measure_peak(torch.bfloat16, args.size)
    print(f"{'dtype':<8} {'GFLOP/s':>9}  (best of the timed products)")
    print(f"{'fp32':<8} {fp32:9.1f}")
    print(f"{'bf16':<8} {bf16:9.1f}")
    print(f"bf16 / fp32: {bf16 / fp32:.2f}x")


if __name__ == "__main__":
    main()

"""The fast MNIST and Fashion-MNIST recipes: wall time and test accuracy side by side.

    .venv/bin/python benchmarks/mnist_fashion.py [--tune] [--threads 2] [--only mnist|fashion-mnist]

Goals (issue 5): MNIST >= 99.5 % within 60 s; Fashion-MNIST >= 93 % within 2 minutes.
"""

from __future__ import annotations

import argparse
import os

from _common import machine, run_and_print

GOALS = {"mnist": (0.995, 60), "fashion-mnist": (0.93, 120)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--only", choices=list(GOALS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info, _ = machine(args.threads)
    print(info, flush=True)
    rows = []
    for data, (acc, sec) in GOALS.items():
        if args.only and data != args.only:
            continue
        r = run_and_print(data, "fast", args.seed, args.tune)
        rows.append((data, r["final"], r["seconds_total"], acc, sec))
    print(f"{'data':<14} {'accuracy':>9} {'seconds':>8}  goal")
    for data, a, s, ga, gs in rows:
        print(f"{data:<14} {a:9.2%} {s:8.1f}  {ga:.1%} in {gs} s: {'met' if a >= ga and s <= gs else 'not met'}")


if __name__ == "__main__":
    main()

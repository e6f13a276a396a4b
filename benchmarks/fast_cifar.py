"""The fast CIFAR-10 recipe: wall time from loading to a scored model, and the accuracy it reaches.

    .venv/bin/python benchmarks/fast_cifar.py [--recipe fast|long] [--tune] [--epochs N] [--model NAME]
        [--augment shift+flip+cutout] [--shift PIXELS] [--threads 2]

Data: the CIFAR-10 JPEG copy in ../shared/datasets (decoded once into the folder cache).
--tune scores a validation tenth of the training data instead of the test split (for tuning).
Goals (issue 5): >= 85 % test accuracy within 5 minutes, >= 93 % within 45 minutes, on 2 cores.
"""

from __future__ import annotations

import argparse
import os

from _common import machine, run_and_print

GOALS = {"fast": (0.85, 300), "long": (0.93, 2700)}   # recipe -> (test accuracy, wall seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--model", default=None, help="another registered model in place of the recipe's (tuning)")
    ap.add_argument("--augment", default=None, help="in place of the recipe's augmentation (tuning)")
    ap.add_argument("--shift", type=int, default=None, help="in place of the recipe's shift in pixels (tuning)")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info, _ = machine(args.threads)
    print(info, flush=True)
    over = {"epochs": args.epochs} if args.epochs else {}
    if args.model:
        over["model"] = args.model
    if args.augment:
        over["augment"] = args.augment
    if args.shift is not None:
        over["shift"] = args.shift
    r = run_and_print("cifar10", args.recipe, args.seed, args.tune, **over)
    acc, seconds = GOALS.get(args.recipe, GOALS["fast"])
    met = r["final"] >= acc and r["seconds_total"] <= seconds
    print(f"goal {acc:.0%} in {seconds} s: {'met' if met else 'not met'} "
          f"({r['final']:.2%} in {r['seconds_total']:.0f} s)")


if __name__ == "__main__":
    main()

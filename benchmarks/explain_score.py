"""The full faithfulness score of every attribution method on 32 CIFAR-10 test images.

    python benchmarks/explain_score.py RUN [--images 32] [--threads 2]

RUN is a seed-cnn run folder trained on CIFAR-10 (e.g. ``seethrough train cifar10 --model
seed-cnn --data-dir ../shared/datasets --epochs 2``). For each method that applies,
:func:`seethrough.explain.faithfulness.score` runs in full: the map, deletion and
insertion with every removal (ROAD, blur, mean, zero) for the map and a random order,
and the cascading randomization check over 3 seeds. The table gives the wall time of
each part and the scores; the goal is under 60 s in all for 32 images on 2 cores.
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED, machine


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="deletion / insertion steps")
    args = p.parse_args()
    print(machine(args.threads)[0])

    import numpy as np

    from seethrough.allocator import keep_freed_memory
    from seethrough.explain import applicable_methods
    from seethrough.explain.faithfulness import score
    from seethrough.run import load_test_split
    from seethrough.trained import TrainedModel

    keep_freed_memory()   # as the command line does at start (seethrough/allocator.py)
    model = TrainedModel.load(args.run)
    test = load_test_split(model, data_dir=SHARED)
    idx = np.sort(np.random.default_rng(0).choice(len(test), args.images, replace=False))
    images = test.images[idx]
    print(f"{model.meta.get('model')} on {test.name}: {len(images)} test images {images.shape[1:]}, "
          f"{args.steps} deletion steps, removals road/blur/mean/zero, cascading randomization, 3 seeds")
    header = (f"{'method':<21}{'map s':>7}{'removals s':>11}{'random. s':>10}{'total s':>9}"
              f"{'del. road':>10}{'ins. road':>10}{'del. blur':>10}{'ins. blur':>10}{'|rho| all random':>17}"
              f"  verdict")
    print(header)
    total, shared, target = 0.0, {}, model.predict(images)
    for method in applicable_methods(model):
        t0 = time.perf_counter()
        r = score(model, images, method, steps=args.steps, target=target, random_curves=shared)
        wall = time.perf_counter() - t0
        total += wall
        s, rm, rz = r["seconds"], r["removals"], r["randomization"]
        print(f"{method:<21}{s['map']:>7.1f}{s['removals']:>11.1f}{s['randomization']:>10.1f}{wall:>9.1f}"
              f"{rm['road']['deletion']:>10.3f}{rm['road']['insertion']:>10.3f}{rm['blur']['deletion']:>10.3f}"
              f"{rm['blur']['insertion']:>10.3f}{rz['final_spearman_abs']:>17.2f}  {rz['verdict']}", flush=True)
        if "ig" in r:
            print(f"  integrated gradients: {min(r['ig']['steps'])}..{max(r['ig']['steps'])} steps, largest "
                  f"convergence delta {r['ig']['max_relative_delta']:.2%} of |f(x) - f(baseline)|")
    print(f"total {total:.1f} s for {len(images)} images (goal: under 60 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

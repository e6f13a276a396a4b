"""Your own photos: starting from a trained network, calibrated confidence, unfamiliar images.

    .venv/bin/python benchmarks/transfer.py catvnoncat [--source cifar10] [--side 32] [--rows all|scratch|transfer] [--seeds 5]
    .venv/bin/python benchmarks/transfer.py few [--backbone-epochs 10] [--seeds 3]
    .venv/bin/python benchmarks/transfer.py imbalanced [--counts 100 20 5] [--seeds 3]   # after few
    .venv/bin/python benchmarks/transfer.py calibration [--epochs 10]
    .venv/bin/python benchmarks/transfer.py unfamiliar [--model lenet5] [--epochs 3]

catvnoncat: the 50 test images, from scratch (logistic regression on pixels, smallcnn) against
the bundled CIFAR-10 network (--from cifar10): head only, logistic regression on its features,
fine-tuned. Goal (issue 13): >= 96 % test, trained in <= 60 s on 2 cores.

few: a backbone trained by the bundled network's recipe (`--recipe backbone`: its model and
settings, --backbone-epochs defaulting to its 10 epochs) on CIFAR-10's airplane, automobile, bird, cat, deer, dog and horse only; then frog vs ship vs truck
with 5, 20 and 100 training images per class (drawn per seed), scored on all 3,000 official test
images of those classes: from scratch (smallcnn) against transfer (head only, fine-tuned).
Goal: transfer ahead at every size, by >= 15 points at 20 per class.

imbalanced: fine-tuned from few's 7-class backbone on frog, ship and truck with 100, 20 and 5
training images, without and with --class-weight balanced: recall of each class on the 3,000 test
images.

calibration: ECE (15 bins) on the test split before and after temperature scaling for seed-cnn
on CIFAR-10 (the keras recipe with 10 % held out to fit the temperature). Goal: at least halved.

unfamiliar: the energy score of an MNIST model (--model, default lenet5, 10 % held out for
the temperature and the threshold), MNIST test against Fashion-MNIST test images: AUROC (goal >= 0.95) and the share of
each marked by the 5 %-of-validation threshold.

Data: ../shared/datasets. Every model is trained with seed 0 unless --seeds says otherwise.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
from _common import SHARED, machine

CIFAR_SOURCE = (0, 1, 2, 3, 4, 5, 7)   # airplane, automobile, bird, cat, deer, dog, horse
CIFAR_TARGET = (6, 8, 9)               # frog, ship, truck


def train_scored(splits, model, cfg, **options):
    """Train through the pipeline (its validation split fits the temperature), score on splits["test"]."""
    from seethrough.pipeline import RunOptions, train_run

    r = train_run(splits, model, cfg, RunOptions(**options))
    ev = r.evaluation
    return {"accuracy": ev.accuracy, "ece_before": ev.ece_uncalibrated, "ece_after": ev.ece,
            "temperature": r.model.temperature, "seconds": r.seconds_train, "epochs": len(r.history),
            "model": r.model, "evaluation": ev}


def bootstrap(stat, n: int, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of ``stat(idx)`` over ``n`` test images drawn again with replacement (``idx``):
    how far the figure could move on another ``n`` images like these."""
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n, n)) for _ in range(draws)]
    return tuple(np.percentile(values, [2.5, 97.5]))


def _intervals(ev) -> dict:
    from seethrough.calibrate import expected_calibration_error as ece

    y, raw = ev.y_true, ev.proba if ev.proba_uncalibrated is None else ev.proba_uncalibrated
    return {"accuracy": bootstrap(lambda i: (ev.proba[i].argmax(1) == y[i]).mean(), len(y)),
            "ece_before": bootstrap(lambda i: ece(raw[i], y[i]), len(y)),
            "ece_after": bootstrap(lambda i: ece(ev.proba[i], y[i]), len(y))}


def _row(name, r, command=""):
    ci = _intervals(r["evaluation"])
    print(f"| {name} | {r['accuracy']:.2%} [{ci['accuracy'][0]:.0%}-{ci['accuracy'][1]:.0%}] | "
          f"{r['ece_before']:.3f} [{ci['ece_before'][0]:.3f}-{ci['ece_before'][1]:.3f}] | "
          f"{r['ece_after']:.3f} [{ci['ece_after'][0]:.3f}-{ci['ece_after'][1]:.3f}] | "
          f"{r['temperature']:.2f} | {r['seconds']:.1f} | {command} |", flush=True)


def catvnoncat(args):
    from seethrough.data import load_splits
    from seethrough.train import TrainConfig
    from seethrough.transfer import match_input

    parts = load_splits("catvnoncat", data_dir=SHARED)
    if args.side:
        parts = {k: match_input(v, (args.side, args.side, 3)) for k, v in parts.items()}
    print("[a, b]: 95 % bootstrap interval over the test images (2,000 draws)")
    print("| model | test accuracy | ECE before | ECE after | temperature | train s | options |")
    print("|---|---|---|---|---|---|---|")
    base = dict(device="cpu", seed=0, val_fraction=0.1, precision=args.precision)
    rows = []
    scratch = (("logistic regression, pixels (scratch)", "logreg", dict(epochs=30)),
               ("smallcnn (scratch)", "smallcnn", dict(epochs=30)))
    for name, spec, opts in scratch if args.rows in ("all", "scratch") else ():
        r = train_scored(parts, spec, TrainConfig(**base, **opts))
        _row(name, r, f"--model {spec} --epochs {opts['epochs']}")
        rows.append((name, r))
    if args.rows == "scratch":
        return
    src = args.source
    for name, how, opts in (
            ("head only (--freeze)", dict(init_from=src, freeze=True), dict(epochs=args.epochs, lr=1e-2)),
            ("logistic regression on its features (--features)", dict(features=src),
             dict(epochs=args.epochs, lr=1e-2)),
            ("fine-tuned (--from)", dict(init_from=src), dict(epochs=args.epochs, lr=1e-3, augment="flip"))):
        r = train_scored(parts, "logreg", TrainConfig(**base, **opts), **how)
        flags = " ".join({"init_from": "--from"}.get(k, f"--{k}") + ("" if v is True else f" {v}") for k, v in how.items())
        _row(name, r, flags + " " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items())
             + f" (input {r['model'].input_shape[0]}px)")
        rows.append((name, r))
    moved = rows[-3:]
    best = max(r["accuracy"] for n, r in moved)
    fast = [r for n, r in moved if r["accuracy"] == best and r["seconds"] <= 60]
    print(f"goal >= 96 % in <= 60 s from --from {args.source}: {'met' if best >= 0.96 and fast else 'not met'} "
          f"with seed 0 (best {best:.2%})")
    if args.seeds > 1:   # 50 test images: one is 2 points; the last row (fine-tuned: how, opts) with other seeds
        runs = [rows[-1][1]] + [train_scored(parts, "logreg", TrainConfig(**{**base, "seed": seed}, **opts), **how)
                                for seed in range(1, args.seeds)]
        accs = [r["accuracy"] for r in runs]
        print(f"fine-tuned, seeds 0..{args.seeds - 1}: {', '.join(f'{a:.2%}' for a in accs)}; mean {np.mean(accs):.2%}, "
              f"train {min(r['seconds'] for r in runs):.1f}-{max(r['seconds'] for r in runs):.1f} s; test ECE "
              f"{np.mean([r['ece_before'] for r in runs]):.3f} -> {np.mean([r['ece_after'] for r in runs]):.3f} "
              f"(mean); "
              f"goal on the mean: {'met' if np.mean(accs) >= 0.96 else 'not met'}")


def _subset(data, classes, per_class=None, seed=0):
    """``data``'s images of ``classes`` (relabelled 0..), ``per_class`` of each (one number, or one per
    class) drawn with ``seed``."""
    from seethrough.data import ImageDataset

    rng = np.random.default_rng(seed)
    counts = per_class if isinstance(per_class, (list, tuple)) else [per_class] * len(classes)
    idx = []
    for c, k in zip(classes, counts):
        pool = np.flatnonzero(data.labels == c)
        idx.append(rng.choice(pool, k, replace=False) if k else pool)
    idx = np.sort(np.concatenate(idx))
    remap = {c: i for i, c in enumerate(classes)}
    return ImageDataset(data.images[idx], np.array([remap[int(y)] for y in data.labels[idx]]),
                        [data.class_names[c] for c in classes], data.name)


def few(args):
    import torch

    from seethrough.data import load_splits
    from seethrough.models.surgery import airbench_init, whiten_first_conv
    from seethrough.recipes import get_recipe
    from seethrough.train import TrainConfig, fit, new_model
    from seethrough.transfer import transfer

    parts = load_splits("cifar10", data_dir=SHARED)
    src_train = _subset(parts["train"], CIFAR_SOURCE)
    test = _subset(parts["test"], CIFAR_TARGET)
    backbone = os.path.join(args.out, "cifar7-backbone")
    if not os.path.isdir(backbone):
        t0 = time.perf_counter()
        recipe = get_recipe("cifar10", "backbone")
        epochs = args.backbone_epochs or recipe.config.epochs
        model = new_model(recipe.model, src_train, seed=0)
        airbench_init(model)
        whiten_first_conv(model, src_train.images)
        fit(model, src_train, replace(recipe.config, epochs=epochs, device="cpu", seed=0))
        model.save(backbone)
        own = _subset(parts["test"], CIFAR_SOURCE)
        print(f"backbone: {recipe.model}, {len(src_train)} images of 7 classes, {epochs} epochs, "
              f"{time.perf_counter() - t0:.0f} s, test accuracy on those 7 classes "
              f"{(model.predict(own.images) == own.labels).mean():.2%}", flush=True)
    print(f"target: {', '.join(test.class_names)}; {len(test)} test images")
    print("| images per class | scratch (smallcnn) | head only | fine-tuned | transfer - scratch |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        accs = {"scratch": [], "head": [], "fine": []}
        for seed in range(args.seeds):
            train = _subset(parts["train"], CIFAR_TARGET, n, seed)
            epochs = max(20, 3000 // (3 * n))      # at least ~1,000 images seen per class
            base = dict(device="cpu", seed=seed, val_fraction=0.0, precision=args.precision)
            torch.manual_seed(seed)
            scratch = new_model("smallcnn", train, seed=seed)
            fit(scratch, train, TrainConfig(**base, epochs=epochs, augment="shift+flip"))
            accs["scratch"].append((scratch.predict(test.images) == test.labels).mean())
            head = transfer(backbone, train, freeze=True, seed=seed)
            fit(head, train, TrainConfig(**base, epochs=epochs, lr=1e-2, augment="flip"))
            accs["head"].append((head.predict(test.images) == test.labels).mean())
            fine = transfer(backbone, train, seed=seed)
            fit(fine, train, TrainConfig(**base, epochs=epochs, lr=1e-3, body_lr_scale=0.1, augment="shift+flip"))
            accs["fine"].append((fine.predict(test.images) == test.labels).mean())
        m = {k: float(np.mean(v)) for k, v in accs.items()}
        print(f"| {n} | {m['scratch']:.2%} | {m['head']:.2%} | {m['fine']:.2%} | "
              f"{(max(m['head'], m['fine']) - m['scratch']) * 100:+.1f} points |", flush=True)


def imbalanced(args):
    """Fine-tuned from the 7-class backbone of ``few`` on frog, ship and truck with ``--counts``
    training images: without and with --class-weight balanced, scored on the 3,000 test images
    (1,000 per class, so accuracy is the mean recall)."""
    from sklearn.metrics import recall_score

    from seethrough.data import load_splits
    from seethrough.pipeline import RunOptions, train_run
    from seethrough.train import TrainConfig

    backbone = os.path.join(args.out, "cifar7-backbone")
    if not os.path.isdir(backbone):
        raise SystemExit(f"{backbone} is missing: run `benchmarks/transfer.py few` first (it trains it)")
    parts = load_splits("cifar10", data_dir=SHARED)
    test = _subset(parts["test"], CIFAR_TARGET)
    counts = list(args.counts)
    print(f"target: {', '.join(test.class_names)} with {counts} training images; {len(test)} test images")
    print("| class weight | test accuracy (= mean recall) | recall " + " | recall ".join(test.class_names) + " |")
    print("|---|---|" + "---|" * len(counts))
    for how in ("none", "balanced"):
        recalls = []
        for seed in range(args.seeds):
            train = _subset(parts["train"], CIFAR_TARGET, counts, seed)
            cfg = TrainConfig(epochs=args.epochs, lr=1e-3, augment="shift+flip", device="cpu", seed=seed,
                              val_fraction=0.1, precision=args.precision, class_weight=how)
            model = train_run({"train": train}, "logreg", cfg, RunOptions(init_from=backbone)).model
            recalls.append(recall_score(test.labels, model.predict(test.images), average=None))
        r = np.mean(recalls, axis=0)
        print(f"| {how} | {r.mean():.2%} | " + " | ".join(f"{x:.2%}" for x in r) + " |", flush=True)


def calibration(args):
    from seethrough.data import load_splits
    from seethrough.recipes import get_recipe
    from seethrough.train import TrainConfig

    recipe = get_recipe("cifar10", "keras")
    cfg = recipe.merge(TrainConfig(val_fraction=0.1, epochs=args.epochs, device="cpu"),
                       {"val_fraction", "epochs", "device"})
    r = train_scored(load_splits("cifar10", data_dir=SHARED), recipe.model, cfg, normalize=recipe.normalize)
    print(f"seed-cnn, cifar10 --recipe keras --val-fraction 0.1 --epochs {args.epochs}: test accuracy "
          f"{r['accuracy']:.2%}; temperature {r['temperature']:.3f}; test ECE {r['ece_before']:.4f} -> "
          f"{r['ece_after']:.4f}; train {r['seconds']:.0f} s", flush=True)


def unfamiliar(args):
    from seethrough.data import load_splits
    from seethrough.train import TrainConfig
    from seethrough.unfamiliar import auroc, energy, is_unfamiliar

    mnist = load_splits("mnist", data_dir=SHARED)
    fashion = load_splits("fashion-mnist", data_dir=SHARED)["test"]
    cfg = TrainConfig(epochs=args.epochs, val_fraction=0.1, device="cpu", seed=0, precision=args.precision)
    r = train_scored({"train": mnist["train"], "test": mnist["test"]}, args.model, cfg)
    model = r["model"]
    za, zb = model.logits(mnist["test"].images), model.logits(fashion.images)
    t = model.temperature
    facts = model.meta["unfamiliar"]
    print(f"MNIST model (train mnist --model {args.model} --epochs {args.epochs}): test accuracy {r['accuracy']:.2%}, "
          f"temperature {t:.3f}, energy threshold {facts['threshold']:.3f}, {r['seconds']:.0f} s")
    msp = auroc(-model.predict_proba(mnist["test"].images).max(1), -model.predict_proba(fashion.images).max(1))
    print(f"AUROC, MNIST test (familiar) vs Fashion-MNIST test (unfamiliar): energy "
          f"{auroc(energy(za, t), energy(zb, t)):.4f}; max softmax probability instead: {msp:.4f}")
    print(f"marked: {is_unfamiliar(za, facts).mean():.2%} of MNIST test, {is_unfamiliar(zb, facts).mean():.2%} "
          "of Fashion-MNIST test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("catvnoncat", "few", "imbalanced", "calibration", "unfamiliar"))
    ap.add_argument("--source", default="cifar10", help="catvnoncat: the network to start from")
    ap.add_argument("--model", default="lenet5", help="unfamiliar: the MNIST model")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--side", type=int, default=None, help="catvnoncat: resize the images to this side first")
    ap.add_argument("--rows", choices=("all", "scratch", "transfer"), default="all", help="catvnoncat: which rows")
    ap.add_argument("--backbone-epochs", type=int, default=None, help="few: default the backbone recipe's")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100])
    ap.add_argument("--counts", type=int, nargs=3, default=[100, 20, 5], help="imbalanced: frog, ship, truck images")
    ap.add_argument("--seeds", type=int, default=3, help="few: seeds per size; catvnoncat: fine-tuned again with each")
    ap.add_argument("--out", default="benchmark-runs", help="few: where the 7-class backbone is kept")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if args.epochs is None:
        args.epochs = {"catvnoncat": 20, "imbalanced": 30, "calibration": 10, "unfamiliar": 3}.get(args.part, 10)
    info, _ = machine(args.threads)
    print(info, "(the CPU is shared with other jobs: timings are upper bounds)", flush=True)
    {"catvnoncat": catvnoncat, "few": few, "imbalanced": imbalanced, "calibration": calibration,
     "unfamiliar": unfamiliar}[args.part](args)


if __name__ == "__main__":
    main()

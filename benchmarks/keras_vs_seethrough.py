"""seed-cnn on CIFAR-10, seethrough against Keras/TensorFlow, in one run on the same threads.

    .venv/bin/python benchmarks/keras_vs_seethrough.py [--epochs 10] [--threads 2]

Both train the TensorFlow CNN tutorial's network (conv32-pool-conv64-pool-conv64-dense64-dense10)
on all 50,000 training images of the CIFAR-10 JPEG copy for 10 epochs with Adam (1e-3), batch 64,
pixels / 255, and are scored on the 10,000 test images. seethrough runs in this process with
``--recipe keras``; Keras runs in a subprocess of the benchmark-only environment
benchmarks/.venv-tf (``python -m venv benchmarks/.venv-tf && benchmarks/.venv-tf/bin/pip install
tensorflow``), fed the same decoded arrays. TensorFlow is never a dependency of seethrough.
Goal (issue 5): at least Keras's test accuracy in at most a third of its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import ROOT, SHARED, machine, run_and_print

TF_PYTHON = ROOT / "benchmarks" / ".venv-tf" / "bin" / "python"
FLOP_FORWARD = 9.1e6  # seed-cnn, one 32x32x3 image (2 x multiply-adds of the convs and dense layers)

KERAS = r"""
import json, sys, time
import numpy as np
threads, epochs, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import tensorflow as tf
import keras  # Keras 3 on the TensorFlow backend
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
keras.utils.set_random_seed(0)
x, y = np.load(folder + "/x.npy") / 255.0, np.load(folder + "/y.npy")
xt, yt = np.load(folder + "/xt.npy") / 255.0, np.load(folder + "/yt.npy")
L = keras.layers
model = keras.Sequential([keras.Input((32, 32, 3)),
    L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
    L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"), L.Flatten(), L.Dense(64, activation="relu"),
    L.Dense(10)])
model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)

times = []
t0 = time.perf_counter()
model.fit(x, y, epochs=epochs, batch_size=64, verbose=2, callbacks=[EpochTimes()])
t_train = time.perf_counter() - t0
t1 = time.perf_counter()
_, acc = model.evaluate(xt, yt, batch_size=1000, verbose=0)
print(json.dumps({"tf": f"{tf.__version__}, Keras {keras.__version__}", "train": t_train, "epochs": times, "score": time.perf_counter() - t1, "accuracy": acc}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-keras", action="store_true")
    args = ap.parse_args()
    info, peak = machine(args.threads)
    print(info, flush=True)
    from seethrough.data import load_splits

    parts = load_splits("cifar10", data_dir=SHARED)
    flop = 3 * FLOP_FORWARD * len(parts["train"]) * args.epochs  # forward + backward ~ 3x forward

    print(f"seethrough {args.epochs} epochs, batch 64, Adam, /255:", flush=True)
    st = run_and_print("cifar10", "keras", 0, False, epochs=args.epochs)
    precision = st["model"].meta["train"]["precision_used"]
    rows = [(f"seethrough ({precision})", st["accuracy"], st["seconds_train"], [h["seconds"] for h in st["history"]])]
    if not args.skip_keras:
        if not TF_PYTHON.is_file():
            sys.exit(f"{TF_PYTHON}: missing; create the benchmark's TensorFlow environment (see the docstring)")
        with tempfile.TemporaryDirectory() as tmp:
            for k, v in {"x": parts["train"].images, "y": parts["train"].labels,
                         "xt": parts["test"].images, "yt": parts["test"].labels}.items():
                np.save(f"{tmp}/{k}.npy", np.asarray(v))
            print(f"Keras {args.epochs} epochs, batch 64, Adam, /255:", flush=True)
            proc = subprocess.run([str(TF_PYTHON), "-c", KERAS, str(args.threads), str(args.epochs), tmp],
                                  capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0 or not lines:
            sys.exit(f"Keras run failed:\n{proc.stderr[-3000:]}")
        for ln in lines[:-1]:
            print("  " + ln)
        k = json.loads(lines[-1])
        rows.append((f"Keras (TF {k['tf']})", k["accuracy"], k["train"], k["epochs"]))
    # On a shared machine other jobs slow some epochs; the fastest epoch shows each framework's own speed.
    print(f"\n{'framework':<36} {'test acc':>8} {'train s':>8} {'fastest epoch s':>15} {'GFLOP/s':>8} "
          f"{'of peak':>8}")
    for name, acc, sec, ep in rows:
        best = min(ep)
        print(f"{name:<36} {acc:8.2%} {sec:8.1f} {best:15.1f} {flop / args.epochs / best / 1e9:8.1f} "
              f"{flop / args.epochs / best / 1e9 / peak:8.1%}")
    print(f"(GFLOP/s from the fastest epoch, {flop / args.epochs / 1e12:.2f} TFLOP each; fp32 peak {peak:.0f} GFLOP/s "
          "measured at the start of this run)")
    if precision == "bf16":  # seethrough's convs and matmuls ran in bfloat16: their own peak is the ceiling
        import torch

        from matmul_peak import measure_peak

        bf16 = measure_peak(torch.bfloat16, seconds=1.0)
        best = min(rows[0][3])
        print(f"seethrough ran in bf16: {flop / args.epochs / best / 1e9:.1f} GFLOP/s is "
              f"{flop / args.epochs / best / 1e9 / bf16:.1%} of the measured bf16 peak {bf16:.0f} GFLOP/s")
    if len(rows) == 2:
        ratio, ratio_best = rows[0][2] / rows[1][2], min(rows[0][3]) / min(rows[1][3])
        met = rows[0][1] >= rows[1][1] and ratio <= 1 / 3
        print(f"seethrough / Keras wall time: {ratio:.2f}, fastest epoch: {ratio_best:.2f} "
              f"(goal <= 0.33 with accuracy >= Keras's): {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()

"""Killed at any moment, resumed exactly: SIGKILL inside every kind of atomic write and at a random
moment of the first epoch, then ``train --resume``; the weights and metrics must be bit-identical to a
run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from seethrough.run import RunFolder

TRAIN = ["train", "digits", "--model", "smallcnn", "--epochs", "2", "--batch-size", "128", "--device", "cpu",
         "--augment", "shift+flip", "--val-fraction", "0.1"]
TIMING = ("seconds", "images_per_s")

# Runs the CLI; with $KILL_AT_WRITE=k it SIGKILLs itself in the k-th atomic write, after the temporary
# file is written and before it is renamed into place (the worst moment for a write).
WRAPPER = """
import os, signal, sys
k = int(os.environ.get("KILL_AT_WRITE", "-1"))
count = [0]
real_replace = os.replace
def replace(src, dst):
    if str(src).endswith(".tmp"):
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        count[0] += 1
    return real_replace(src, dst)
os.replace = replace
from seethrough.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, **kwargs)


def _state(run: Path):
    weights = load_file(str(run / "model.safetensors"))
    metrics = [{k: v for k, v in r.items() if k not in TIMING} for r in RunFolder(run).read_metrics()]
    return weights, metrics


def _same(a, b):
    (wa, ma), (wb, mb) = a, b
    return ma == mb and wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    proc = _run([*TRAIN, "--out", out, "--name", "ref"])
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
    return _state(out / "ref")


def _kill_and_resume(tmp_path, reference, writes) -> tuple[int, int, int]:
    """Kill a run in each of ``writes`` (the k-th atomic write), resume it; (kills, resumed, bit-identical)."""
    kills = resumed = identical = 0
    for k in writes:
        name = f"k{k}"
        proc = _run([*TRAIN, "--out", tmp_path, "--name", name], env={"KILL_AT_WRITE": str(k)})
        assert proc.wait(timeout=600) == -signal.SIGKILL, f"write {k} was not reached"
        kills += 1
        again = _run([*TRAIN, "--out", tmp_path, "--name", name, "--resume"])
        assert again.wait(timeout=600) == 0, again.stderr.read().decode()
        resumed += 1
        identical += _same(_state(tmp_path / name), reference)
        assert not list((tmp_path / name).rglob("*.tmp")), f"kill at write {k}: temporary files left"
    print(f"\nkill test: {kills} kills inside atomic writes, {resumed} runs resumed, {identical} bit-identical")
    return kills, resumed, identical


# A 2-epoch run makes 13 atomic writes: per epoch the checkpoint, metrics.jsonl, model.safetensors and
# model.json (0-7), at the end metrics.jsonl, model.safetensors, model.json (8-10), evaluation.json and
# confusion.png (11-12). The default run kills in the first write of epoch 1, in epoch 1's model.json (the
# checkpoint is there, model.json is not), in epoch 2's checkpoint and in the evaluation; `-m slow`, in all.
def test_killed_inside_atomic_writes_resumes_bit_identical(reference, tmp_path):
    kills, resumed, identical = _kill_and_resume(tmp_path, reference, [0, 3, 4, 11])
    assert identical == resumed == kills == 4


@pytest.mark.slow
def test_killed_inside_every_atomic_write_resumes_bit_identical(reference, tmp_path):
    kills, resumed, identical = _kill_and_resume(tmp_path, reference, range(13))
    assert identical == resumed == kills == 13


def test_killed_at_a_random_moment_of_the_first_epoch_resumes_bit_identical(reference, tmp_path):
    rng = random.Random(0)
    for i in range(1):
        proc = _run([*TRAIN, "--out", tmp_path, "--name", f"t{i}"])
        time.sleep(rng.uniform(1.0, 4.0))  # somewhere in importing, loading or the first epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        again = _run([*TRAIN, "--out", tmp_path, "--name", f"t{i}", "--resume"])
        assert again.wait(timeout=600) == 0, again.stderr.read().decode()
        assert _same(_state(tmp_path / f"t{i}"), reference)

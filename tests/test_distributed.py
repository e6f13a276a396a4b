"""DistributedDataParallel: two CPU processes (Gloo) must train the weights one process trains.

The oracle is a single-process ``fit`` of the same configuration: with the global batch
split between the ranks and DDP averaging the gradients, every update is the one-process
update up to float rounding, so the weights agree to ~1e-5 (a model without batch norm
or dropout). The children are started with torch.multiprocessing and given the
environment torchrun would give them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from conftest import loopback_works
from seethrough.cli import main
from seethrough.data import ImageDataset
from seethrough.train import TrainConfig, fit, new_model
from seethrough.train.distributed import Ranks
from seethrough.trained import TrainedModel

ROOT = Path(__file__).resolve().parents[1]
# the last training batch (65 = 4 * 16 + 1) has one image: rank 1's part of it is empty
CONFIG = dict(batch_size=16, lr=3e-3, optimizer="adam", schedule="cosine", augment="shift+flip",
              label_smoothing=0.1, seed=3, device="cpu")


def _data() -> tuple[ImageDataset, ImageDataset]:
    """Tiny random 8x8 grey images of 3 classes, 65 to train on and 21 to validate on."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 255, size=(86, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(86) % 3
    images[labels == 1, :4] //= 3  # something to learn: class 1 is dark at the top
    ds = ImageDataset(images, labels, ["a", "b", "c"], "tiny")
    return ds.subset(np.arange(65)), ds.subset(np.arange(65, 86))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


needs_loopback = pytest.mark.skipif(not loopback_works(), reason="no TCP over 127.0.0.1 on this machine")
DEADLINE_S = 300  # the two ranks take a few seconds; past this they are stopped and the test fails


def _worker(rank: int, world: int, ports: list[int], out: str) -> None:
    """One rank: train 2 epochs into run<rank>, then (again in a group) resume run0 to 3 epochs."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    out = Path(out)
    train, val = _data()

    os.environ["MASTER_PORT"] = str(ports[0])
    model = new_model("mlp", train, seed=3)
    history = fit(model, train, TrainConfig(epochs=2, **CONFIG), val=val, run_dir=out / f"run{rank}")
    save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(out / f"two-{rank}.safetensors"))
    (out / f"two-{rank}.json").write_text(json.dumps(history))

    os.environ["MASTER_PORT"] = str(ports[1])  # every rank resumes from rank 0's checkpoint
    model = TrainedModel.load(out / "run0")
    history = fit(model, train, TrainConfig(epochs=3, **CONFIG), val=val, run_dir=out / "run0", resume=True)
    save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(out / f"three-{rank}.safetensors"))
    (out / f"three-{rank}.json").write_text(json.dumps(history))


def _two_ports() -> list[int]:
    ports = [_free_port()]
    while len(ports) < 2:
        port = _free_port()
        if port != ports[0]:
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The folder the two ranks wrote into (they train twice: fresh, then resumed)."""
    out = tmp_path_factory.mktemp("ddp")
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the children
    try:
        ranks = mp.start_processes(_worker, args=(2, _two_ports(), str(out)), nprocs=2, join=False)
        deadline = time.monotonic() + DEADLINE_S
        while not ranks.join(timeout=1):  # raises if a rank failed
            if time.monotonic() > deadline:
                for process in ranks.processes:
                    process.kill()
                pytest.fail(f"the two ranks had not finished after {DEADLINE_S} s")
    finally:
        if old is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = old
    return out


def _one_process(run: Path, resumed: bool):
    """What one process trains: 2 epochs into ``run``, or those resumed to 3 (the cosine schedule is for 2)."""
    train, val = _data()
    model = new_model("mlp", train, seed=3)
    history = fit(model, train, TrainConfig(epochs=2, **CONFIG), val=val, run_dir=run)
    if resumed:
        model = TrainedModel.load(run)
        history = fit(model, train, TrainConfig(epochs=3, **CONFIG), val=val, run_dir=run, resume=True)
    return model.net.state_dict(), history


def _assert_same_training(out: Path, name: str, weights, history):
    for rank in (0, 1):
        theirs = load_file(str(out / f"{name}-{rank}.safetensors"))
        assert theirs.keys() == weights.keys()
        for k in weights:
            np.testing.assert_allclose(theirs[k].numpy(), weights[k].numpy(), rtol=0, atol=1e-5, err_msg=k)
        rows = json.loads((out / f"{name}-{rank}.json").read_text())
        assert [r["epoch"] for r in rows] == [r["epoch"] for r in history]
        for mine, one in zip(rows, history):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                assert mine[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7), key


@needs_loopback
def test_two_processes_train_the_one_process_weights(two_ranks, tmp_path):
    _assert_same_training(two_ranks, "two", *_one_process(tmp_path, resumed=False))


@needs_loopback
def test_every_rank_resumes_from_the_checkpoint(two_ranks, tmp_path):
    _assert_same_training(two_ranks, "three", *_one_process(tmp_path, resumed=True))


@needs_loopback
def test_only_rank_zero_writes_the_run_folder(two_ranks):
    run = two_ranks / "run0"
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert names == {"model.json", "model.safetensors", "metrics.jsonl", "checkpoint/state.safetensors"}
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not (two_ranks / "run1").exists()  # rank 1 was given its own folder and wrote nothing


def test_one_process_ranks_change_nothing():
    one, x = Ranks(), torch.arange(10)
    assert not one.active and one.part(x) is x and one.all_sum(1.5, 2) == (1.5, 2)
    net = torch.nn.Linear(2, 2)
    assert one.wrap(net) is net


def test_parts_cover_the_batch_once():
    x = torch.arange(7)
    parts = [Ranks(rank=r, world=3).part(x) for r in range(3)]
    assert torch.equal(torch.cat(parts), x) and [len(p) for p in parts] == [3, 2, 2]
    assert [len(Ranks(rank=r, world=2).part(x[:1])) for r in range(2)] == [1, 0]


def test_numpy_engine_under_torchrun_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = main(["train", "digits", "--model", "logreg", "--engine", "numpy", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--engine numpy runs in one process" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.is_file(), reason="no torchrun beside this Python")
@needs_loopback
def test_torchrun_trains_digits_into_one_run_folder(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(_free_port()),
                           "-m", "seethrough", "train", "digits", "--model", "logreg", "--epochs", "1",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 processes" in " ".join(done.stdout.split()), done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["digits-logreg"]  # rank 1 made no folder of its own
    run = tmp_path / "digits-logreg"
    for name in ("model.json", "model.safetensors", "metrics.jsonl", "checkpoint/state.safetensors",
                 "evaluation.json", "confusion.png"):
        assert (run / name).is_file(), name
    # the oracle: the same command in one process
    assert main(["train", "digits", "--model", "logreg", "--epochs", "1", "--out", str(tmp_path / "one")]) == 0
    one = tmp_path / "one" / "digits-logreg"
    rows = [[json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()] for r in (run, one)]
    assert len(rows[0]) == len(rows[1]) == 1
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert rows[0][0][key] == pytest.approx(rows[1][0][key], rel=1e-5), key
    accuracy = [json.loads((r / "evaluation.json").read_text())["accuracy"] for r in (run, one)]
    assert accuracy[0] == pytest.approx(accuracy[1], abs=1e-9)

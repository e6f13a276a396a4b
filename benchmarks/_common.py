"""Helpers shared by the benchmark scripts: where the data is, what machine this is, a recipe run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SEETHROUGH_SHARED_DATA", ROOT.parent / "shared" / "datasets"))


def machine(threads: int) -> str:
    """One line: CPU model, cores, load, flags and the measured fp32 matmul peak."""
    import torch

    from matmul_peak import cpu_flags, cpu_model, measure_peak

    torch.set_num_threads(threads)
    peak = measure_peak(torch.float32, seconds=1.0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, {threads} threads, load average {load:.1f}, "
            f"{cpu_flags()}; measured fp32 matmul peak {peak:.0f} GFLOP/s"), peak


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(*serve_args: str, start_within: float = 60):
    """``seethrough serve *serve_args`` in a subprocess on a free 127.0.0.1 port, once it answers.

    Yields its base URL and the process; the server is stopped on leaving.
    """
    import httpx

    port = free_port()
    cmd = [sys.executable, "-c", "from seethrough.cli import run; run()", "serve", *serve_args, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_within
        while True:
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read().decode())
            try:
                httpx.get(f"{base}/api/models", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start within {start_within:.0f} s") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(15)


def run_and_print(data: str, recipe: str, seed: int, tune: bool, **overrides) -> dict:
    from seethrough.pipeline import run_recipe

    t0 = time.perf_counter()
    r = run_recipe(data, recipe, data_dir=SHARED, seed=seed, tune=tune, **overrides)
    for h in r["history"]:
        print(f"  epoch {h['epoch']}: train loss {h['train_loss']:.4f}, train acc {h['train_acc']:.2%}, "
              f"{h['seconds']:.1f} s, {h['images_per_s']:.0f} img/s", flush=True)
    tta = f", with {r['tta']} TTA {r['accuracy_tta']:.2%}" if r["accuracy_tta"] is not None else ""
    print(f"{r['recipe']}: {r['split']} accuracy {r['accuracy']:.2%}{tta}; wall {time.perf_counter() - t0:.1f} s "
          f"(load {r['seconds_load']:.1f}, train {r['seconds_train']:.1f}, score {r['seconds_score']:.1f})",
          flush=True)
    return r

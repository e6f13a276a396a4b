"""Load on the web server: many concurrent predict requests on loopback.

    .venv/bin/python benchmarks/web_load.py                     # trains a small digits CNN first
    .venv/bin/python benchmarks/web_load.py runs/digits-smallcnn --requests 200 --rounds 3
    .venv/bin/python benchmarks/web_load.py --case big-png --requests 32 --rounds 3
    .venv/bin/python benchmarks/web_load.py --during-training      # predicts while the page trains

Starts ``seethrough serve`` in a subprocess on a free 127.0.0.1 port, sends ``--requests``
predict uploads at once, and prints, per round: successes, failures, p50 / p99 / max latency,
throughput, and the server's resident memory from /proc: before the round, its peak during
the round (VmHWM, reset through /proc/PID/clear_refs before each round) and a second after.
The uploads (``--case``): ``small``, each a different test digit enlarged to a 64x64 PNG;
``big-png``, one 3999x3999 RGBA PNG of about 70 KB (a compressible image inside the default
limits that decodes to 61 MiB). The number of requests and the time are both bounded
(``--time-limit``); nothing leaves the machine.

``--during-training`` (:func:`while_training`): the server also has an empty workspace; one
client builds the page's data set (3 classes x 50 generated 64x64 images) and starts a
smallcnn training on it, and while it runs a second client sends ``--requests`` predict
requests one after another, as a person clicking would; prints their latencies and
checks the training was running from the first request to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from _common import served


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory (``VmRSS``) or its peak since the last reset (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def train_default(root: Path) -> Path:
    from seethrough.data import load_splits
    from seethrough.train import TrainConfig, fit, new_model

    train = load_splits("digits")["train"]
    model = new_model("smallcnn", train, seed=0)
    fit(model, train, TrainConfig(epochs=2, seed=0, device="cpu"))
    return model.save(root / "digits-smallcnn")


def big_png() -> bytes:
    """3999x3999 RGBA, semi-transparent, a red line every 500 rows: ~70 KB that decode to 61 MiB."""
    a = np.zeros((3999, 3999, 4), np.uint8)
    a[..., 3] = 200
    a[::500, :, 0] = 255
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def uploads(n: int, case: str = "small") -> list[bytes]:
    if case == "big-png":
        return [big_png()] * n
    from seethrough.data import load_splits

    test = load_splits("digits")["test"]
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(test.images[i % len(test), ..., 0]).resize((64, 64)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


async def one(client: httpx.AsyncClient, url: str, data: bytes) -> tuple[bool, float, str]:
    t0 = time.perf_counter()
    try:
        r = await client.post(url, files={"image": ("digit.png", data, "image/png")})
        ok = r.status_code == 200 and "prediction" in r.json()
        why = "" if ok else f"{r.status_code}: {r.text[:80]}"
    except Exception as exc:  # a refused or timed-out connection is a failure, counted
        ok, why = False, type(exc).__name__
    return ok, time.perf_counter() - t0, why


async def burst(base: str, model_id: str, files: list[bytes], time_limit: float) -> tuple[list, float]:
    limits = httpx.Limits(max_connections=len(files), max_keepalive_connections=len(files))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=time_limit) as client:
        t0 = time.perf_counter()
        tasks = [one(client, f"/api/models/{model_id}/predict", f) for f in files]
        results = await asyncio.wait_for(asyncio.gather(*tasks), time_limit)
        return results, time.perf_counter() - t0


def while_training(runs: list[str], n: int, epochs: int) -> int:
    """Predict latency from a second client while a training from the page runs."""
    import statistics

    from web_train import build_dataset, server, start_training

    files = uploads(n)
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "ws", *runs) as (base, proc):
        model_id = httpx.get(f"{base}/api/models", timeout=10).json()[0]["id"]
        build_dataset(base, 50)
        with httpx.Client(base_url=base, timeout=60) as client:
            for f in files[:4]:  # warm up
                client.post(f"/api/models/{model_id}/predict", files={"image": ("d.png", f, "image/png")})
            job = start_training(base, "smallcnn", epochs, 64)
            while httpx.get(f"{base}/api/trainings").json()[-1]["history"] == []:  # until it is training for sure
                time.sleep(0.2)
            lat, failed = [], 0
            for f in files:
                t0 = time.perf_counter()
                r = client.post(f"/api/models/{model_id}/predict", files={"image": ("d.png", f, "image/png")})
                lat.append(time.perf_counter() - t0)
                failed += r.status_code != 200
            state = next(j for j in httpx.get(f"{base}/api/trainings").json() if j["id"] == job)
            httpx.post(f"{base}/api/trainings/{job}/cancel")
        lat_ms = np.array(lat) * 1000
        print(f"server: {' '.join(runs)} (model {model_id}); a smallcnn training on 3 x 50 images at 64x64 "
              f"running in the same server; {n} predict requests from a second client, one at a time")
        print(f"{'ok':>5} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8} "
              f"{'epochs done meanwhile':>22} {'load avg':>9}")
        print(f"{n - failed:>5} {failed:>6} {np.percentile(lat_ms, 50):>8.1f} {np.percentile(lat_ms, 99):>8.1f} "
              f"{lat_ms.max():>8.1f} {statistics.fmean(lat_ms):>8.1f} {len(state['history']):>22} "
              f"{os.getloadavg()[0]:>9.1f}")
        if state["status"] != "running":
            print(f"the training was {state['status']} before the last request: run again with more --epochs")
            return 1
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="run folders to serve (default: train a small digits CNN)")
    ap.add_argument("--requests", type=int, default=200, help="concurrent requests per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds allowed per round")
    ap.add_argument("--case", choices=("small", "big-png"), default="small", help="what is uploaded (see above)")
    ap.add_argument("--max-memory-mb", type=float, help="passed to serve (default: serve's own)")
    ap.add_argument("--during-training", action="store_true",
                    help="predict from a second client while the page trains (see while_training)")
    ap.add_argument("--epochs", type=int, default=200, help="--during-training: epochs of the training")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 1000:
        ap.error("--requests must be in 1..1000")
    if args.during_training:
        with tempfile.TemporaryDirectory() as tmp:
            return while_training(args.runs or [str(train_default(Path(tmp)))], args.requests, args.epochs)

    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or [str(train_default(Path(tmp)))]
        extra = ["--max-memory-mb", str(args.max_memory_mb)] if args.max_memory_mb else []
        with served(*runs, *extra) as (base, server):
            model_id = httpx.get(f"{base}/api/models", timeout=10).json()[0]["id"]
            started = rss_mib(server.pid)
            asyncio.run(burst(base, model_id, uploads(4), args.time_limit))  # warm up, small images
            files = uploads(args.requests, args.case)
            what = "64x64 PNG" if args.case == "small" else f"3999x3999 RGBA PNG ({len(files[0]):,} bytes)"
            print(f"server: {' '.join(runs)} (model {model_id}), {args.requests} concurrent "
                  f"predict requests per round, {what} uploads; server RSS at start {started:.1f} MiB")
            print(f"{'round':>5} {'ok':>5} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
                  f"{'req/s':>7} {'RSS before MiB':>15} {'peak MiB':>9} {'RSS after MiB':>14}")
            failed_total = 0
            for i in range(args.rounds):
                before = rss_mib(server.pid)
                peak_known = reset_peak(server.pid)
                results, wall = asyncio.run(burst(base, model_id, files, args.time_limit))
                peak = rss_mib(server.pid, "VmHWM") if peak_known else float("nan")
                time.sleep(1.0)
                after = rss_mib(server.pid)
                lat = np.array([r[1] for r in results]) * 1000
                ok = sum(r[0] for r in results)
                failed_total += len(results) - ok
                print(f"{i + 1:>5} {ok:>5} {len(results) - ok:>6} {np.percentile(lat, 50):>8.1f} "
                      f"{np.percentile(lat, 99):>8.1f} {lat.max():>8.1f} {len(results) / wall:>7.1f} "
                      f"{before:>15.1f} {peak:>9.1f} {after:>14.1f}")
                for r in results:
                    if not r[0]:
                        print(f"  failure: {r[2]}")
                        break
    return 1 if failed_total else 0


if __name__ == "__main__":
    sys.exit(main())

"""Training from the page: from the click on "train" to a finished run, timed through the API.

    .venv/bin/python benchmarks/web_train.py                    # smallcnn, 3 classes x 50 images, 64x64
    .venv/bin/python benchmarks/web_train.py --epochs 10 --repeats 3 --model logreg

Starts ``seethrough serve`` in a subprocess with an empty workspace on a free 127.0.0.1
port, builds the data set through the API as the page does (three classes of generated
shapes, 64x64 PNGs, ``--per-class`` each), then times each training from its POST to the
event stream's "done" (copying the data set, reading it, training, evaluating on the
held-out part, writing the run folder, loading it into the model list). Prints one row
per repeat: that wall time, the server's CPU seconds meanwhile (all threads; on a machine
shared with other work the wall time grows but this does not), the seconds of the epochs
themselves, the held-out accuracy and the load average. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import served

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the generated shapes the tests use

from shapes import shape_pngs  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server(workspace: Path, *extra: str):
    """``seethrough serve`` with ``workspace`` (see ``_common.served``): yields its base URL and process."""
    return served(*extra, "--workspace", str(workspace))


def build_dataset(base: str, per_class: int, side: int = 64) -> None:
    """Three classes of generated shapes, uploaded as the page uploads them."""
    for name, pngs in shape_pngs(per_class, side=side).items():
        httpx.post(f"{base}/api/workspace/classes", data={"name": name}).raise_for_status()
        for i in range(0, len(pngs), 40):
            files = [("images", (f"{j}.png", d, "image/png")) for j, d in enumerate(pngs[i:i + 40])]
            httpx.post(f"{base}/api/workspace/classes/{name}/images", files=files, timeout=60).raise_for_status()


def start_training(base: str, model: str, epochs: int, size: int) -> str:
    r = httpx.post(f"{base}/api/trainings", data={"model": model, "epochs": epochs, "size": size})
    r.raise_for_status()
    return r.json()["id"]


def wait_done(base: str, job_id: str, timeout: float = 600) -> dict:
    """Follow the event stream until ``job_id`` finishes; its last state."""
    with httpx.stream("GET", f"{base}/api/trainings/events", timeout=timeout) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                job = next((j for j in json.loads(line[5:]) if j["id"] == job_id), None)
                if job and job["status"] not in ("queued", "running"):
                    return job
    raise SystemExit(f"the event stream ended before {job_id} finished")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smallcnn", choices=["logreg", "smallcnn"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "ws") as (base, proc):
        build_dataset(base, args.per_class)
        print(f"{args.model}, {args.epochs} epochs, 3 classes x {args.per_class} images, {args.size}x{args.size}; "
              f"{os.cpu_count()} logical CPUs")
        print(f"{'repeat':>6} {'click to done s':>16} {'server CPU s':>13} {'epochs s':>9} {'held-out acc':>13} "
              f"{'load avg':>9}")
        for i in range(args.repeats):
            t0, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
            job = wait_done(base, start_training(base, args.model, args.epochs, args.size))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
            if job["status"] != "done":
                raise SystemExit(f"training {job['id']} {job['status']}: {job['message']}")
            train_s = sum(r.get("seconds", 0.0) for r in job["history"])
            acc = job["message"].split("accuracy ")[-1].split(" ")[0] if "accuracy" in job["message"] else "?"
            print(f"{i + 1:>6} {wall:>16.1f} {cpu:>13.1f} {train_s:>9.1f} {acc:>13} {os.getloadavg()[0]:>9.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

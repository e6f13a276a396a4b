"""The main job: logistic regression and a small CNN on scikit-learn's digits, one report.

    >>> from seethrough.demo import run_demo
    >>> result = run_demo("seethrough-demo", progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import _io
from .config import TrainConfig
from .data import load_splits
from .pipeline import RunOptions, train_run
from .report import demo_report
from .run import new_folder

# (run name, model, training options): chosen on the validation split, not on the test split.
DEMO_RUNS = [
    ("logreg", "logreg", dict(epochs=30, lr=1e-2, schedule="cosine")),
    ("smallcnn", "smallcnn", dict(epochs=30, lr=2e-3, schedule="cosine")),
]


def run_demo(out_dir="seethrough-demo", *, seed: int = 0, device: str = "auto", progress: bool = True,
             log=print) -> dict:
    """Train both demo models, evaluate them on the test split, and write report.html.

    Returns ``{"report": path, "results": [...]}``; each run is saved in ``out_dir/runs/<name>``.
    An ``out_dir`` that already holds files is left alone: the demo goes to ``out_dir-2`` (``-3`` ...).
    """
    wanted = Path(out_dir)
    out_dir = new_folder(wanted)
    if out_dir != wanted:
        log(f"{wanted} holds files already; writing to {out_dir}")
    parts = load_splits("digits", seed=seed)
    train, test = parts["train"], parts["test"]
    results = []
    for name, model_name, options in DEMO_RUNS:
        t0 = time.perf_counter()
        run = train_run(parts, model_name, TrainConfig(seed=seed, device=device, **options),
                        RunOptions(run_dir=out_dir / "runs" / name, progress=progress, log=log,
                                   meta={"data": "digits"}))
        results.append({"name": name, "model": run.model, "history": run.history,
                        "seconds": run.seconds_train, "evaluation": run.evaluation, "run_dir": run.run_dir})
    # the sample whose feature maps are shown: the first test image the CNN gets right
    cnn = results[-1]["evaluation"]
    sample = int(np.flatnonzero(cnn.y_true == cnn.y_pred)[0])
    report = out_dir / "report.html"
    _io.write_text(report, demo_report(results, test, sample))
    return {"report": report, "results": results, "train": train, "test": test}

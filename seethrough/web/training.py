"""What a training started from the page does: the same pipeline as ``seethrough train``.

A ``train`` job freezes the workspace's data set into the new run folder (``data/``),
loads it as a folder data set (a stratified part held out for the evaluation, the
seed fixed), builds the chosen model and hands all of it to
:func:`seethrough.pipeline.train_run`, which writes an ordinary run folder: model.json,
weights, metrics.jsonl, checkpoint/, evaluation.json and confusion.png. A ``demo`` job
trains the demo's two digit models the same way. Every finished epoch's metrics row
goes to the job, so the page draws the curves as they come; the job's stop event
cancels it, and the half-made run folder is removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import SeethroughError
from .jobs import Cancelled, Job, JobQueue
from .workspace import Workspace

# Models a page training can start from: new ones, or the bundled network's layers with a new last layer
# (as `seethrough train DATA --from cifar10 [--freeze]`). Any served run is offered too, as "run:ID".
MODELS = {
    "logreg": {"label": "logistic regression", "lr": 1e-2},
    "smallcnn": {"label": "small CNN", "lr": 2e-3},
    "cifar10": {"label": "from the bundled CIFAR-10 network, all layers trained", "lr": 1e-3, "init_from": "cifar10"},
    "cifar10-head": {"label": "from the bundled CIFAR-10 network, only a new last layer", "lr": 1e-2,
                     "init_from": "cifar10", "freeze": True},
}
RUN_PREFIX = "run:"  # "run:ID": start from the layers of the served run ID
FROM_RUN = {"label": "from a served run, all layers trained", "lr": 1e-3}
SIZES = (16, 28, 32, 48, 64, 96, 128)
MAX_EPOCHS = 200
MIN_PER_CLASS = 4  # one held out for the evaluation, one for validation, the rest to train on
DEMO_EPOCHS = 10   # the demo's digit models, short: the first start should take seconds


def model_choices(store) -> list[dict]:
    """What the page offers: the models above, then every served run to start from."""
    return ([{"name": k, "label": v["label"]} for k, v in MODELS.items()]
            + [{"name": RUN_PREFIX + rid, "label": f"from run {rid}, all layers trained"} for rid in store.runs])


def check_request(model: str, epochs: int, size: int, store=None) -> dict:
    """The page's training request, checked before it joins the queue."""
    if model.startswith(RUN_PREFIX):
        if store is None or model[len(RUN_PREFIX):] not in store.runs:
            raise SeethroughError(f"model {model!r}: no served run {model[len(RUN_PREFIX):]!r} to start from; "
                                  f"expected one of {', '.join(RUN_PREFIX + r for r in (store.runs if store else ()))}")
    elif model not in MODELS:
        raise SeethroughError(f"model must be one of {', '.join(MODELS)} or run:ID, got {model!r}")
    if not 1 <= epochs <= MAX_EPOCHS:
        raise SeethroughError(f"epochs must be 1..{MAX_EPOCHS}, got {epochs}")
    if size not in SIZES:
        raise SeethroughError(f"size must be one of {', '.join(map(str, SIZES))}, got {size}")
    return {"model": model, "epochs": epochs, "size": size}


def check_dataset(workspace: Workspace) -> list[str]:
    """The classes to train on; refuses a data set too small to split."""
    counts = {c["name"]: c["count"] for c in workspace.summary()["classes"]}
    if len(counts) < 2:
        raise SeethroughError(f"the data set has {len(counts)} class(es); add at least two")
    few = [f"{c} ({n})" for c, n in counts.items() if n < MIN_PER_CLASS]
    if few:
        raise SeethroughError(f"every class needs at least {MIN_PER_CLASS} images; too few in: {', '.join(few)}")
    return list(counts)


def make_worker(workspace: Workspace, store, queue_ref: list) -> callable:
    """The function the queue's thread calls for each job; finished runs join ``store`` at once."""

    def work(job: Job) -> None:
        queue: JobQueue = queue_ref[0]
        if job.kind == "demo":
            _demo(job, queue, workspace, store)
        else:
            _train(job, queue, workspace, store)

    return work


def _train(job: Job, queue: JobQueue, workspace: Workspace, store) -> None:
    from ..data.folder import load_folder_splits

    req = job.request
    workspace.check_room()
    classes = check_dataset(workspace)
    choice = MODELS.get(req["model"]) or FROM_RUN
    source = (str(store.get(req["model"][len(RUN_PREFIX):]).folder.resolve()) if req["model"].startswith(RUN_PREFIX)
              else choice.get("init_from"))
    label = req["model"].replace(":", "-")
    run_dir = workspace.new_run_dir(req.get("name") or f"{'-'.join(classes)[:40]}-{label}")
    try:
        queue.update(job, phase="copying the data set")
        data = workspace.snapshot(run_dir / "data")
        queue.update(job, phase="reading the images")
        splits = load_folder_splits(data, size=(req["size"], req["size"]), seed=0, cache=False)
        meta = {"data": str(data), "data_options": {"size": str(req["size"])}, "trained_from": "web page"}
        said = _run_pipeline(job, queue, run_dir, req["model"], splits, req["epochs"], choice["lr"], meta,
                             init_from=source, freeze=choice.get("freeze", False))
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    run = store.add(run_dir)
    queue.update(job, runs=[run.id], message=said)


def _demo(job: Job, queue: JobQueue, workspace: Workspace, store) -> None:
    from ..data import load_splits
    from ..demo import DEMO_RUNS

    splits = load_splits("digits", seed=0)
    made, said = [], []
    for name, model_name, options in DEMO_RUNS:
        run_dir = workspace.new_run_dir(f"digits-{name}")
        try:
            said.append(_run_pipeline(job, queue, run_dir, model_name, splits, DEMO_EPOCHS, options["lr"],
                                      {"data": "digits"}))
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        made.append(store.add(run_dir).id)
        queue.update(job, runs=list(made))
    queue.update(job, message="; ".join(said))


def _run_pipeline(job: Job, queue: JobQueue, run_dir: Path, model_name: str, splits: dict, epochs: int,
                  lr: float, meta: dict, init_from: str | None = None, freeze: bool = False) -> str:
    """One run through the library's pipeline, its epochs reported to ``job``; what it scored, in words."""
    from ..config import TrainConfig
    from ..errors import TrainingStopped
    from ..pipeline import RunOptions, train_run

    config = TrainConfig(epochs=epochs, lr=lr, batch_size=32, schedule="cosine", seed=0, device="cpu")
    queue.update(job, phase=f"training {model_name} on {len(splits['train'])} images")

    def on_metrics(row: dict) -> None:
        queue.add_row(job, {**row, "run": run_dir.name})

    try:
        result = train_run(splits, model_name, config, RunOptions(run_dir=run_dir, meta=meta, on_metrics=on_metrics,
                                                                  stop=job.stop, init_from=init_from, freeze=freeze))
    except TrainingStopped:
        raise Cancelled() from None
    return f"{run_dir.name}: accuracy {result.evaluation.accuracy:.1%} on {len(splits['test'])} held-out images"

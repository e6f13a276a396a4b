"""The core commands: demo, datasets, models, train, evaluate, predict.

Each command parses its options, calls the library, and prints what it returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from .app import cli, console


def _pct(x: float) -> str:
    return f"{x:.2%}"


@cli.command()
@click.option("--out", default="seethrough-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the runs and report.html.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
def demo(out, seed, device):
    """Train logistic regression and a small CNN on the bundled digits; write report.html."""
    import time

    from ..demo import run_demo

    t0 = time.perf_counter()
    result = run_demo(out, seed=seed, device=device, progress=console.is_terminal, log=console.print)
    table = Table(title="seethrough demo: scikit-learn digits "
                        f"({len(result['train'])} train / {len(result['test'])} test images)")
    for col in ("model", "test accuracy", "misclassified", "train seconds", "run folder"):
        table.add_column(col)
    for r in result["results"]:
        ev = r["evaluation"]
        table.add_row(r["name"], _pct(ev.accuracy), f"{len(ev.wrong)} / {len(ev.y_true)}",
                      f"{r['seconds']:.1f}", str(r["run_dir"]))
    console.print(table)
    console.print(f"report: {result['report'].resolve()}")
    console.print(f"total time: {time.perf_counter() - t0:.1f} s")


@cli.command()
@click.option("--data-dir", type=click.Path(), help="Folder to look for data sets in.")
def datasets(data_dir):
    """List the data sets and whether each is on disk."""
    from ..data import DATASETS

    table = Table(title="data sets")
    for col in ("name", "description", "where"):
        table.add_column(col)
    for info in DATASETS.values():
        table.add_row(info.name, info.description, info.where(data_dir))
    console.print(table)
    console.print("Any folder with one sub-folder per class is a data set too: seethrough train PATH")


@cli.command()
@click.option("--input", "input_shape", default="32x32x3", show_default=True, help="HxWxC to size the models for.")
@click.option("--classes", default=10, show_default=True)
def models(input_shape, classes):
    """List the registered models with their parameter counts."""
    from ..errors import SeethroughError
    from ..models import DESCRIPTIONS, count_params, create_spec, list_models

    try:
        h, w, c = (int(v) for v in input_shape.lower().split("x"))
    except ValueError:
        raise SeethroughError(f"--input must be HxWxC, e.g. 32x32x3, got {input_shape!r}") from None
    table = Table(title=f"models for {h}x{w}x{c} input, {classes} classes")
    for col in ("name", "parameters", "description"):
        table.add_column(col)
    for name in list_models():
        try:
            n = f"{count_params(create_spec(name, (c, h, w), classes), (c, h, w)):,}"
        except SeethroughError:
            n = "input too small"
        table.add_row(name, n, DESCRIPTIONS[name])
    console.print(table)


def _unique_run_dir(out: Path, name: str) -> Path:
    path, i = out / name, 2
    while path.exists():
        path, i = out / f"{name}-{i}", i + 1
    return path


@cli.command()
@click.argument("data")
@click.option("--model", "model_name", default="smallcnn", show_default=True,
              help="A registered model (seethrough models) or a JSON spec file.")
@click.option("--recipe", default=None, help="A named preset for DATA, e.g. fast or keras (options given here win).")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Learning rate.")
@click.option("--optimizer", default="adam", show_default=True, help="sgd, adam or adamw.")
@click.option("--momentum", default=0.9, show_default=True, help="For sgd.")
@click.option("--weight-decay", default=0.0, show_default=True)
@click.option("--schedule", default="none", show_default=True, help="none, cosine, step, onecycle or triangle.")
@click.option("--augment", default="none", show_default=True, help="none, shift, flip, shift+flip or shift+flip+cutout.")
@click.option("--label-smoothing", default=0.0, show_default=True)
@click.option("--shift", type=int, default=None, help="Pixels --augment shift moves images by (default: an eighth of the side).")
@click.option("--lookahead/--no-lookahead", default=False, show_default=True,
              help="Every 5 steps average the weights with a slow copy of them (Lookahead).")
@click.option("--val-fraction", default=0.1, show_default=True, help="Part of the training data held out for validation.")
@click.option("--patience", type=int, default=None, help="Stop after this many epochs without a better validation loss.")
@click.option("--normalize", default="standard", show_default=True, help="standard (per-channel mean/std) or unit (/255).")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option("--precision", default="fp32", show_default=True,
              help="fp32, bf16 (mixed precision) or auto (bf16 where the CPU or GPU does it natively).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False), help="Folder for run folders.")
@click.option("--name", default=None, help="Run folder name (default: DATA-MODEL).")
@click.option("--resume", is_flag=True, help="Continue the run folder --name from its last checkpoint.")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--size", default=None, help="Image folders: resize every image to N or HxW.")
@click.option("--strict", is_flag=True, help="Image folders: stop at an unreadable file instead of skipping it.")
@click.option("--engine", type=click.Choice(["torch", "numpy"]), default="torch", show_default=True,
              help="numpy: train with the from-scratch NumPy engine (same run folder).")
@click.option("--snapshots", is_flag=True, help="Keep first-layer weights and a test image's feature maps every epoch.")
@click.option("--from", "init_from", default=None,
              help="Start from this run folder's layers (or the bundled network: cifar10), with a new last layer.")
@click.option("--freeze", is_flag=True, help="With --from: train only the new last layer.")
@click.option("--body-lr-scale", type=float, default=None,
              help="With --from: learning rate of the copied layers x this (default 0.1).")
@click.option("--features", default=None,
              help="SOURCE[:LAYER]: logistic regression on the frozen output of a network's layer.")
def train(data, model_name, epochs, batch_size, lr, optimizer, momentum, weight_decay, schedule, augment,
          label_smoothing, shift, lookahead, val_fraction, patience, normalize, seed, device, precision, out, name,
          resume, data_dir, size, strict, engine="torch", snapshots=False, recipe=None, init_from=None, freeze=False,
          body_lr_scale=None, features=None):
    """Train MODEL on DATA (a data set name or a folder of class folders) into a run folder."""
    from ..data import load_splits
    from ..errors import SeethroughError
    from ..evaluate import evaluate
    from ..trained import TrainedModel
    from ..train import TrainConfig, fit, new_model
    from ..train.distributed import rank, world_size

    from ..recipes import OPTIONS

    ctx = click.get_current_context()
    opts = {k: ctx.params[k] for k in OPTIONS if k in ctx.params}  # the options a recipe may also set
    if recipe:  # the recipe's values for every option not given on the command line
        from ..recipes import get_recipe, merge_options

        recipe = get_recipe(data, recipe)
        given = {k for k in ctx.params if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT}
        opts = merge_options(recipe, opts, given)
    model_name, normalize = opts.pop("model_name"), opts.pop("normalize")
    if freeze and not init_from:
        raise SeethroughError("--freeze keeps the layers copied by --from; give --from SOURCE too")
    if features and ctx.get_parameter_source("model_name") != click.core.ParameterSource.DEFAULT \
            and model_name != "logreg":
        raise SeethroughError(f"--features trains logistic regression on a network's features; use --model logreg, "
                              f"not {model_name!r}")
    if body_lr_scale is None and init_from and not freeze:
        from ..transfer import BODY_LR_SCALE

        body_lr_scale = BODY_LR_SCALE
    cfg = TrainConfig(**opts, patience=patience, seed=seed, device=device, body_lr_scale=body_lr_scale).check()
    if engine == "numpy" and world_size() > 1:
        raise SeethroughError(f"--engine numpy runs in one process; $WORLD_SIZE is {world_size()} "
                              "(use --engine torch under torchrun)")
    if engine == "numpy" and (init_from or features):
        raise SeethroughError("--from and --features train with --engine torch only (the NumPy engine keeps "
                              "no layers fixed)")
    if engine == "numpy":  # before any data is read
        from ..scratch.fit import check_numpy_config

        check_numpy_config(cfg, resume)
    parts = load_splits(data, data_dir=data_dir, size=size, strict=strict, seed=seed)
    started = None
    if (init_from or features) and not resume:  # the source's layers, the data matched to its input
        from ..transfer import start_from

        started, parts = start_from(init_from, features, freeze=freeze, splits=parts, seed=seed)
        model_name = "logreg-features" if features else started.meta.get("model", "custom")
    trainset, testset = parts["train"], parts["test"]
    base = name or f"{Path(data).name if Path(data).exists() else data}-{Path(model_name).stem}"
    data_meta = {"data": str(Path(data).resolve()) if Path(data).exists() else data, "data_options": {"size": size}}
    if resume:
        run_dir = Path(out) / base
        model = TrainedModel.load(run_dir, device=device)
        if model.input_shape != trainset.image_shape:  # a run started --from another: its input rule again
            from ..transfer import match_input

            trainset, testset = (match_input(d, model.input_shape) for d in (trainset, testset))
    elif started is not None:
        run_dir = _unique_run_dir(Path(out), base)
        model = started
        model.meta.update(data_meta)
    else:
        run_dir = _unique_run_dir(Path(out), base)
        model = new_model(model_name, trainset, normalize=normalize, seed=seed, meta=data_meta)
        if recipe:
            from ..recipes import prepare_model

            prepare_model(recipe, model, trainset.images)
    if model.class_names != trainset.class_names:
        raise SeethroughError(f"{run_dir}: its classes {model.class_names} differ from {data}'s")
    if rank() == 0:  # under torchrun, rank 0 speaks for all
        console.print(f"training {model.meta.get('model')} on {trainset.name}: {len(trainset)} images "
                      f"{'x'.join(map(str, trainset.image_shape))}, {trainset.n_classes} classes -> {run_dir}"
                      + (f" on {world_size()} processes" if world_size() > 1 else ""))
    if engine == "numpy":
        if snapshots:
            raise SeethroughError("--snapshots works with --engine torch only")
        from ..scratch.fit import fit_numpy

        history = fit_numpy(model, trainset, cfg, run_dir=run_dir, resume=resume, log=console.print)
    else:
        on_epoch = None
        if snapshots:  # the first test image, so the report can show the same one
            from ..train.snapshots import Snapshots

            on_epoch = Snapshots(run_dir, testset.images[0], label=testset.class_names[testset.labels[0]])
        history = fit(model, trainset, cfg, run_dir=run_dir, resume=resume, progress=True, on_epoch=on_epoch)
    if rank() != 0:  # under torchrun the other ranks are done: rank 0 evaluates and writes the run folder
        return
    from ..calibrate import calibrate_model, validation_split

    val = validation_split(trainset, cfg.val_fraction, cfg.seed)  # the images fit held out
    if val is not None:  # the temperature and the unfamiliar-image threshold, into model.json
        calibrate_model(model, val)
        model.save(run_dir)
    ev = evaluate(model, testset)
    _save_evaluation(run_dir, ev)
    last = history[-1] if history else {}
    table = Table(title=f"{run_dir.name}")
    for col in ("epochs", "train acc", "val acc", "test acc", "run folder"):
        table.add_column(col)
    table.add_row(str(len(history)), _pct(last.get("train_acc", 0)),
                  _pct(last["val_acc"]) if "val_acc" in last else "-", _pct(ev.accuracy), str(run_dir))
    console.print(table)
    _print_calibration(ev)
    if recipe and recipe.tta != "none":  # the recipe's own score: averaged over flipped or shifted copies
        from ..recipes import predict_tta

        probs = predict_tta(model, testset.images, views=recipe.tta)
        console.print(f"test accuracy averaged over copies ({recipe.tta}, --recipe {recipe.name}): "
                      f"{_pct(float((probs.argmax(1) == testset.labels).mean()))}")


def _print_calibration(ev) -> None:
    if ev.temperature != 1.0:
        console.print(f"calibration: temperature {ev.temperature:.3f} (fitted on the validation split); test ECE "
                      f"{ev.ece_uncalibrated:.4f} before, {ev.ece:.4f} after")
    else:
        console.print(f"calibration: no temperature fitted (no validation split); test ECE {ev.ece:.4f}")
    if ev.unfamiliar is not None:
        console.print(f"unfamiliar: {int(ev.unfamiliar.sum())} of {len(ev.unfamiliar)} test images marked "
                      "(the threshold marks 5 % of the validation images)")


def _save_evaluation(run_dir: Path, ev) -> Path:
    from .. import _io
    from ..viz import confusion_figure, save_png

    _io.write_json(run_dir / "evaluation.json", ev.to_json())
    return save_png(confusion_figure(ev.confusion, ev.class_names, f"{run_dir.name}: test split"),
                    run_dir / "confusion.png")


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--data", default=None, help="Data set or folder to evaluate on (default: the run's own test split).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--device", default="cpu", show_default=True)
def evaluate(run, data, data_dir, device):
    """Accuracy, per-class precision and recall, and a confusion matrix PNG for RUN."""
    from ..errors import RunError
    from ..evaluate import evaluate as evaluate_model
    from ..report.run_report import load_test_split
    from ..trained import TrainedModel

    model = TrainedModel.load(run, device=device)
    try:
        testset = load_test_split(model, data, data_dir)
    except RunError as exc:
        raise RunError(f"{run}: {exc}") from None
    ev = evaluate_model(model, testset)
    png = _save_evaluation(Path(run), ev)
    table = Table(title=f"{run} on {testset.name} test split ({len(testset)} images): accuracy {_pct(ev.accuracy)}")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col)
    for row in ev.per_class():
        table.add_row(row["class"], _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]), str(row["support"]))
    console.print(table)
    _print_calibration(ev)
    console.print(f"confusion matrix: {png}")
    console.print(f"metrics: {Path(run) / 'evaluation.json'}")


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--engine", type=click.Choice(["torch", "numpy"]), default="torch", show_default=True,
              help="numpy: compute the probabilities with the from-scratch NumPy engine.")
@click.option("--precision", default="fp32", show_default=True,
              help="fp32, bf16 or auto (bf16 where the CPU or GPU does it natively).")
@click.option("--uncalibrated", is_flag=True, help="Show the raw softmax instead of the temperature-scaled one.")
def predict(run, images, top_k, as_json, device, engine="torch", precision="fp32", uncalibrated=False):
    """Predict the class of each IMAGE (any size or mode) with RUN.

    Probabilities are calibrated by the temperature fitted on the run's validation split; an image
    whose energy score is above the run's threshold (5 % of validation images) is marked unfamiliar.
    """
    import numpy as np

    from ..calibrate import scaled_softmax
    from ..errors import SeethroughError
    from ..trained import TrainedModel
    from ..unfamiliar import energy, is_unfamiliar

    if top_k < 1:
        raise SeethroughError(f"--top-k must be at least 1, got {top_k}")
    model = TrainedModel.load(run, device=device)
    batch = np.stack([model.to_input(p) for p in images])
    if engine == "numpy":
        from ..scratch.bridge import logits as numpy_logits

        z = numpy_logits(model, batch)
    else:
        z = model.logits(batch, precision=precision)
    t = 1.0 if uncalibrated else model.temperature
    proba = scaled_softmax(z, t)
    facts = model.meta.get("unfamiliar")
    marked = is_unfamiliar(z, facts)
    k = min(top_k, proba.shape[1])
    results = []
    for n, (path, p) in enumerate(zip(images, proba)):
        order = np.argsort(-p)[:k]
        results.append({"image": str(path), "prediction": model.class_names[order[0]],
                        "top": [{"class": model.class_names[i], "probability": float(p[i])} for i in order],
                        "temperature": t,
                        "unfamiliar": None if marked is None else bool(marked[n]),
                        "energy": float(energy(z[n:n + 1], facts.get("temperature", 1.0) if facts else 1.0)[0])})
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    title = f"predictions of {run}" + (" (raw softmax)" if uncalibrated or t == 1.0 else f" (temperature {t:.2f})")
    table = Table(title=title)
    table.add_column("image")
    table.add_column("prediction")
    table.add_column(f"top {k}")
    if marked is not None:
        table.add_column("unfamiliar?")
    for r in results:
        row = [r["image"], r["prediction"], ", ".join(f"{x['class']} {x['probability']:.1%}" for x in r["top"])]
        if marked is not None:
            row.append(f"[bold red]yes[/] (energy {r['energy']:.2f} > {facts['threshold']:.2f})" if r["unfamiliar"]
                       else "no")
        table.add_row(*row)
    console.print(table)
    if marked is not None and marked.any():
        console.print(f"unfamiliar: unlike the images {run} was trained on (its threshold marks "
                      f"{facts['false_alarm_rate']:.0%} of its validation images); treat the prediction with care")

"""The core commands: demo, datasets, models, train, evaluate, predict.

Each command parses its options, calls the library, and prints what it returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from .app import cli, console, examples
from .options import config_from, config_options


def _pct(x: float) -> str:
    return f"{x:.2%}"


@cli.command(epilog=examples(
    'seethrough demo',
    'seethrough demo --out my-demo --device cpu'))
@click.option("--out", default="seethrough-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the runs and report.html.")
@click.option("--seed", default=0, show_default=True, help="Seed of the weights, shuffling and splits.")
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
        table.add_column(col, overflow="fold")  # fold: a long path wraps, never cut
    for r in result["results"]:
        ev = r["evaluation"]
        table.add_row(r["name"], _pct(ev.accuracy), f"{len(ev.wrong)} / {len(ev.y_true)}",
                      f"{r['seconds']:.1f}", str(r["run_dir"]))
    console.print(table)
    console.print(f"report: {result['report'].resolve()}")
    console.print(f"total time: {time.perf_counter() - t0:.1f} s")


@cli.command(epilog=examples(
    'seethrough datasets',
    'seethrough datasets --data-dir ../shared/datasets'))
@click.option("--data-dir", type=click.Path(), help="Folder to look for data sets in.")
def datasets(data_dir):
    """List the data sets and whether each is on disk."""
    from ..data import DATASETS

    table = Table(title="data sets")
    for col in ("name", "description", "where"):
        table.add_column(col, overflow="fold")
    for info in DATASETS.values():
        table.add_row(info.name, info.description, info.where(data_dir))
    console.print(table)
    console.print("Any folder with one sub-folder per class is a data set too: seethrough train PATH")


@cli.command(epilog=examples(
    'seethrough models',
    'seethrough models --input 8x8x1 --classes 10'))
@click.option("--input", "input_shape", default="32x32x3", show_default=True, help="HxWxC to size the models for.")
@click.option("--classes", default=10, show_default=True, help="Number of classes to size the last layer for.")
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


@cli.command(epilog=examples(
    'seethrough train digits --model logreg --epochs 20 --lr 0.01',
    'seethrough train ~/photos --model smallcnn --size 64 --augment shift+flip',
    'seethrough train cifar10 --recipe fast --data-dir ../shared/datasets'))
@click.argument("data")
@click.option("--model", "model_name", default="smallcnn", show_default=True,
              help="A registered model (seethrough models) or a JSON spec file.")
@click.option("--recipe", default=None, help="A named preset for DATA, e.g. fast or keras (options given here win).")
@config_options
@click.option("--normalize", default="standard", show_default=True, help="standard (per-channel mean/std) or unit (/255).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False), help="Folder for run folders.")
@click.option("--name", default=None, help="Run folder name (default: DATA-MODEL; -2, -3 ... when taken).")
@click.option("--resume", is_flag=True, help="Continue the run folder --name from its last checkpoint.")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--size", default=None, help="Image folders: resize every image to N or HxW.")
@click.option("--strict", is_flag=True, help="Image folders: stop at an unreadable file instead of skipping it.")
@click.option("--no-cache", is_flag=True,
              help="Image folders: decode afresh, without reading or writing the decode cache.")
@click.option("--engine", type=click.Choice(["torch", "numpy"]), default="torch", show_default=True,
              help="numpy: train with the from-scratch NumPy engine (same run folder).")
@click.option("--snapshots", is_flag=True, help="Keep first-layer weights and a test image's feature maps every epoch.")
@click.option("--from", "init_from", default=None,
              help="Start from this run folder's layers (or the bundled network: cifar10), with a new last layer.")
@click.option("--freeze", is_flag=True, help="With --from: train only the new last layer.")
@click.option("--features", default=None,
              help="SOURCE[:LAYER]: logistic regression on the frozen output of a network's layer (--model logreg).")
def train(data, model_name, recipe, normalize, out, name, resume, data_dir, size, strict, no_cache, engine,
          snapshots, init_from, freeze, features, **config_values):
    """Train MODEL on DATA (a data set name or a folder of class folders) into a run folder."""
    from ..pipeline import train as train_pipeline
    from ..pipeline import with_recipe

    from ..errors import SeethroughError

    config, given = config_from(config_values)
    if recipe:  # the recipe's values for every option not given on the command line
        from ..recipes import get_recipe

        recipe = get_recipe(data, recipe)
        source = click.get_current_context().get_parameter_source
        typed = lambda p: source(p) != click.core.ParameterSource.DEFAULT  # noqa: E731
        model_name, normalize, config = with_recipe(recipe, config, given, model_name if typed("model_name") else None,
                                                    normalize if typed("normalize") else None)
    if features and click.get_current_context().get_parameter_source("model_name") \
            != click.core.ParameterSource.DEFAULT and model_name != "logreg":
        raise SeethroughError(f"--features trains logistic regression on a network's features; use --model logreg, "
                              f"not {model_name!r}")
    result = train_pipeline(data, model_name, config, out=out, name=name, data_dir=data_dir, size=size,
                            strict=strict, cache=not no_cache, resume=resume, recipe=recipe, engine=engine,
                            snapshots=snapshots, normalize=normalize, progress=True, init_from=init_from,
                            freeze=freeze, features=features,
                            log=lambda text: console.print(text, highlight=False, soft_wrap=True))
    if result.evaluation is None:  # under torchrun, the ranks other than 0
        return
    last, ev = result.history[-1] if result.history else {}, result.evaluation
    table = Table(title=result.run_dir.name)
    for col in ("epochs", "train acc", "val acc", "test acc"):
        table.add_column(col)
    table.add_row(str(len(result.history)), _pct(last.get("train_acc", 0)),
                  _pct(last["val_acc"]) if "val_acc" in last else "-", _pct(ev.accuracy))
    console.print(table)
    console.print(f"run folder: {result.run_dir}", soft_wrap=True)
    _print_calibration(ev)
    if result.tta_accuracy is not None:  # the recipe's own score: averaged over flipped or shifted copies
        console.print(f"test accuracy averaged over copies ({recipe.tta}, --recipe {recipe.name}): "
                      f"{_pct(result.tta_accuracy)}")


def _print_calibration(ev) -> None:
    if ev.temperature != 1.0:
        console.print(f"calibration: temperature {ev.temperature:.3f} (fitted on the validation split); test ECE "
                      f"{ev.ece_uncalibrated:.4f} before, {ev.ece:.4f} after", soft_wrap=True)
    else:
        console.print(f"calibration: temperature 1 (none fitted: no validation split, or no error in it to fit); "
                      f"test ECE {ev.ece:.4f}", soft_wrap=True)
    if ev.unfamiliar is not None:
        console.print(f"unfamiliar: {int(ev.unfamiliar.sum())} of {len(ev.unfamiliar)} test images marked "
                      "(the threshold marks 5 % of the validation images)", soft_wrap=True)


@cli.command(epilog=examples(
    'seethrough evaluate runs/digits-smallcnn',
    'seethrough evaluate runs/photos-smallcnn --data ~/more-photos'))
@click.argument("run", type=click.Path())
@click.option("--data", default=None, help="Data set or folder to evaluate on (default: the run's own test split).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
def evaluate(run, data, data_dir, device):
    """Accuracy, per-class precision and recall, and a confusion matrix PNG for RUN."""
    from ..errors import RunError
    from ..evaluate import evaluate as evaluate_model
    from ..run import RunFolder, load_test_split
    from ..trained import TrainedModel

    model = TrainedModel.load(run, device=device)
    try:
        testset = load_test_split(model, data, data_dir)
    except RunError as exc:
        raise RunError(f"{run}: {exc}") from None
    if "resized_from" in testset.info:
        console.print(f"note: {testset.name}'s images ({'x'.join(map(str, testset.info['resized_from']))}) were "
                      f"converted to the model's input {'x'.join(map(str, model.input_shape))}", soft_wrap=True)
    ev = evaluate_model(model, testset)
    metrics, png = RunFolder(run).write_evaluation(ev, data)  # another data set's results go beside the run's own
    table = Table(title=f"{run} on {testset.name} test split ({len(testset)} images): accuracy {_pct(ev.accuracy)}")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, overflow="fold")
    for row in ev.per_class():
        table.add_row(row["class"], _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]), str(row["support"]))
    console.print(table)
    _print_calibration(ev)
    console.print(f"confusion matrix: {png}", soft_wrap=True)
    console.print(f"metrics: {metrics}", soft_wrap=True)


@cli.command(epilog=examples(
    'seethrough predict runs/digits-smallcnn my_digit.png',
    'seethrough predict runs/cats-smallcnn photos/*.jpg --top-k 2 --json'))
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", default=3, show_default=True, help="How many of the likeliest classes to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
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
    from ..data.images import load_images
    from ..errors import SeethroughError
    from ..trained import TrainedModel
    from ..unfamiliar import energy, is_unfamiliar

    if top_k < 1:
        raise SeethroughError(f"--top-k must be at least 1, got {top_k}")
    model = TrainedModel.load(run, device=device)
    batch, images, _ = load_images(images, model.input_shape)  # an unreadable file: a warning, the rest go on
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
    table.add_column("image", overflow="fold")
    table.add_column("prediction", overflow="fold")
    table.add_column(f"top {k}", overflow="fold")
    if marked is not None:
        table.add_column("unfamiliar?", overflow="fold")
    for r in results:
        row = [r["image"], r["prediction"], ", ".join(f"{x['class']} {x['probability']:.1%}" for x in r["top"])]
        if marked is not None:
            row.append(f"[bold red]yes[/] (energy {r['energy']:.2f} > {facts['threshold']:.2f})" if r["unfamiliar"]
                       else "no")
        table.add_row(*row)
    console.print(table)
    if marked is not None and marked.any():
        console.print(f"unfamiliar: unlike the images {run} was trained on (its threshold marks "
                      f"{facts['false_alarm_rate']:.0%} of its validation images); treat the prediction with care",
                      soft_wrap=True)

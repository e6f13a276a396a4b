"""``seethrough experiment``: learning curves and invariance, each a table (JSON) and a figure (PNG).

Thin: the computing is :mod:`seethrough.experiments`, the drawing :mod:`seethrough.viz.experiments`.
Everything heavy is imported inside the commands, so ``seethrough --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SeethroughError
from .app import cli, console, examples


def _int_list(text: str | None, option: str) -> list[int] | None:
    if not text:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SeethroughError(f"{option}: expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise SeethroughError(f"{option}: expected positive whole numbers separated by commas, got {text!r}")
    return values


@cli.group(epilog=examples(
    "seethrough experiment learning-curve digits",
    "seethrough experiment invariance runs/digits-logreg runs/digits-smallcnn"))
def experiment():
    """Experiments that test claims about image classifiers on your own data."""


@experiment.command("learning-curve", epilog=examples(
    "seethrough experiment learning-curve digits",
    "seethrough experiment learning-curve mnist --sizes 100,300,1000,3000 --data-dir ../shared/datasets",
    "seethrough experiment learning-curve ~/photos --size 64 --models logreg,tinyvgg --seeds 2"))
@click.argument("data")
@click.option("--models", default="logreg,smallcnn", show_default=True,
              help="Models to compare, separated by commas; the first is the baseline.")
@click.option("--sizes", default=None,
              help="Training-set sizes, e.g. 50,100,200,400 (default: 5 sizes from 5 images per class to all).")
@click.option("--seeds", default=3, show_default=True, help="Seeds per size: each draws its own subset and weights.")
@click.option("--steps", default=300, show_default=True, help="About this many optimizer steps per training, whatever the size.")
@click.option("--batch-size", default=32, show_default=True, help="Images per step.")
@click.option("--lr", default=3e-3, show_default=True, help="Adam's learning rate.")
@click.option("--jobs", type=int, default=None, help="Trainings side by side, one process each (default: one per CPU core).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--size", type=int, default=None, help="Image side for a folder of images.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder to write experiments/learning-curve.{json,png} into (default: runs/DATA-learning-curve; "
                   "a run folder's report then shows it).")
def learning_curve_command(data, models, sizes, seeds, steps, batch_size, lr, jobs, data_dir, size, out):
    """Test accuracy against the number of training images, with the spread over seeds.

    Each model is trained on stratified subsets of growing size of DATA's training split and scored on
    its whole test split: where does a CNN overtake logistic regression?
    """
    import time

    from ..data import load_splits
    from ..experiments import save_result
    from ..experiments.learning_curve import learning_curve
    from ..viz import fig_to_png
    from ..viz.experiments import learning_curve_figure

    t0 = time.perf_counter()
    splits = load_splits(data, data_dir=data_dir, size=size)
    result = learning_curve(splits["train"], splits["test"], [m.strip() for m in models.split(",") if m.strip()],
                            _int_list(sizes, "--sizes"), seeds, steps=steps, batch_size=batch_size, lr=lr,
                            jobs=jobs, log=console.print)
    folder = Path(out) if out else Path("runs") / f"{Path(str(data)).name or 'data'}-learning-curve"
    paths = save_result(folder, "learning-curve", result, fig_to_png(learning_curve_figure(result), dpi=110))
    _print_summary(result)
    console.print(f"{time.perf_counter() - t0:.1f} s in all")
    for p in paths:
        console.print(f"wrote {p}", soft_wrap=True)


def _print_summary(result: dict):
    from rich.table import Table

    table = Table(title=f"test accuracy on {result['data']}, mean ± std over {result['seeds']} seeds")
    table.add_column("images", justify="right")
    for m in result["models"]:
        table.add_column(m, justify="right")
    cell = {(r["model"], r["size"]): f"{r['mean']:.1%} ± {r['std']:.1%}" for r in result["summary"]}
    for s in result["sizes"]:
        table.add_row(str(s), *(cell.get((m, s), "") for m in result["models"]))
    console.print(table)
    for m, at in result["overtakes"].items():
        first = result["models"][0]
        console.print(f"{m} beats {first} from {at} training images on" if at else
                      f"{m} does not stay ahead of {first} up to {result['sizes'][-1]} images")


@experiment.command("invariance", epilog=examples(
    "seethrough experiment invariance runs/digits-logreg runs/digits-smallcnn",
    "seethrough experiment invariance runs/mnist-smallcnn runs/mnist-smallcnn-shift --shift --rotate"))
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--shift", is_flag=True, help="Move the test images (up to 3/8 of their side).")
@click.option("--rotate", is_flag=True, help="Turn them (up to 180 degrees).")
@click.option("--scale", is_flag=True, help="Shrink and enlarge them (0.5x to 1.5x).")
@click.option("--noise", is_flag=True, help="Add Gaussian noise (std up to 128 of 255).")
@click.option("--limit", type=int, default=2000, show_default=True,
              help="Test images used per run (a stratified sample; 0 for all).")
@click.option("--data", default=None, help="Data set or folder for the test images (default: each run's own).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
def invariance_command(runs, shift, rotate, scale, noise, limit, data, data_dir):
    """Accuracy of each RUN as its test images are shifted, rotated, scaled and made noisy.

    Without a transform flag, all four are measured. The table and a figure with the runs side by side
    are written into every RUN's experiments/ folder (invariance.json, invariance.png), where
    'seethrough report RUN' shows them.
    """
    from ..experiments import save_result
    from ..experiments.invariance import TRANSFORMS, invariance, sample
    from ..run import load_test_split
    from ..trained import TrainedModel
    from ..viz import fig_to_png
    from ..viz.experiments import invariance_figure

    chosen = [k for k, on in zip(TRANSFORMS, (shift, rotate, scale, noise)) if on] or list(TRANSFORMS)
    names = _run_names(runs)
    models, tests = {}, {}
    for run, name in zip(runs, names):
        models[name] = TrainedModel.load(run)
        tests[name] = sample(load_test_split(models[name], data, data_dir), limit or None)
    result = invariance(models, tests, chosen, log=console.print)
    png = fig_to_png(invariance_figure(result), dpi=110)
    for run in runs:
        for p in save_result(run, "invariance", result, png):
            console.print(f"wrote {p}", soft_wrap=True)


def _run_names(runs) -> list[str]:
    """Each run's folder name, with its parent when two runs share a name."""
    names = [Path(r).name for r in runs]
    return [str(Path(r)) if names.count(n) > 1 else n for r, n in zip(runs, names)]

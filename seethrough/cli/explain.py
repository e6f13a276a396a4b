"""``seethrough explain`` (attribution maps as PNG overlays, optionally scored) and
``seethrough report`` (one self-contained HTML page about a run)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .app import cli, console, examples


def _methods(model, method: str) -> list[str]:
    from ..explain import applicable_methods, get_method

    if method == "all":
        return applicable_methods(model)
    get_method(method).check_model(model)  # unknown name or unsuited model: one clear line
    return [method]


def _out_names(images, methods, out: Path) -> dict:
    names, seen = {}, set()
    for i, path in enumerate(images):
        stem = Path(path).stem or f"image{i}"
        if stem in seen:
            stem = f"{stem}-{i}"
        seen.add(stem)
        for m in methods:
            names[i, m] = out / f"{stem}-{m}.png"
    return names


@cli.command(epilog=examples(
    "seethrough explain runs/digits-smallcnn my_digit.png --method gradcam",
    "seethrough explain runs/digits-smallcnn a.png b.png --method all --score",
    "seethrough explain runs/cats-logreg cat.jpg --method weight_map --target cat"))
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--method", default="gradcam", show_default=True,
              help="saliency, smoothgrad, gradcam, occlusion, integrated_gradients, weight_map, "
                   "weight_x_input, or all (every method that suits the model).")
@click.option("--layer", default=None, help="Layer Grad-CAM reads (default: the last conv layer).")
@click.option("--target", default=None, help="Class to explain, by name or index (default: the predicted one).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder for the PNGs (default: RUN/explain).")
@click.option("--score", is_flag=True, help="Also score each method's faithfulness on these images.")
@click.option("--removal", default="road", show_default=True,
              type=click.Choice(["road", "blur", "mean", "zero", "all"]),
              help="What a removed pixel becomes in the --score deletion and insertion curves.")
@click.option("--steps", default=None, type=click.IntRange(1, None),
              help="Integrated gradients' steps (default: chosen per image so that the convergence delta "
                   "stays under 1 % of |f(x) - f(baseline)|, at most 512).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
def explain(run, images, method, layer, target, out, score, removal, steps, device):
    """Explain RUN's decision on each IMAGE: a heatmap over the image per method."""
    import time

    import numpy as np

    from ..errors import ModelError
    import warnings

    from ..data.images import load_images
    from ..explain import get_method
    from ..explain.base import ConstantMapWarning
    from ..trained import TrainedModel
    from ..run import RunFolder
    from ..viz import explain_png

    model = TrainedModel.load(run, device=device)
    methods = _methods(model, method)
    if layer is not None and not any(get_method(m).uses_layer for m in methods):
        raise ModelError(f"--layer applies to gradcam only, not to {', '.join(methods)}")
    batch, images, _ = load_images(images, model.input_shape)  # (N, H, W, C); an unreadable file: a warning
    pred = model.predict(batch)
    out = Path(out) if out else RunFolder(run).explain
    names = _out_names(images, methods, out)
    from .. import _io

    table = Table(title=f"explanations of {run}")
    table.add_column("image", overflow="fold")
    table.add_column("method", no_wrap=True)
    for col in ("prediction", "explained class", "ms / image", "IG delta", "file"):
        table.add_column(col, overflow="fold")
    proba = model.predict_proba(batch)
    for m in methods:
        cls = get_method(m)
        opts = _options(cls, layer, steps)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught, cls(model, **opts) as e:
            warnings.simplefilter("always", ConstantMapWarning)
            if target is not None:
                targets = e.resolve_target(target, len(batch))
            else:
                targets = [int(p) for p in pred]
            maps = e(batch, target=targets)
        for w in caught:
            console.print(f"warning: {w.message}")
        ms = 1000 * (time.perf_counter() - t0) / len(batch)
        for i, path in enumerate(images):
            cls_name = model.class_names[targets[i]]
            title = (f"{Path(path).name}: {m}{' (' + e.layer + ')' if e.layer else ''} for class {cls_name} "
                     f"(p = {proba[i, targets[i]]:.2f})")
            _io.write_bytes(names[i, m], explain_png(batch[i], maps[i], title, cls.signed, label=m))
            d = e.diagnostics[i] if e.diagnostics else None
            delta = f"{d['relative_delta']:.2%} ({d['steps']} steps)" if d else "-"
            table.add_row(Path(path).name, m, model.class_names[pred[i]], cls_name, f"{ms:.1f}", delta,
                          names[i, m].name)
    console.print(table)
    console.print(f"overlays written to {out}")
    if score:
        _print_scores(model, batch, methods, layer, removal, steps)


def _options(cls, layer, steps) -> dict:
    opts = {"layer": layer} if cls.uses_layer else {}
    if steps is not None and cls.name == "integrated_gradients":
        opts["steps"] = steps
    return opts


def _print_scores(model, batch, methods, layer, removal, steps):
    from ..explain import get_method
    from ..explain.faithfulness import score as score_method
    from ..explain.randomization import THRESHOLD

    table = Table(title=f"faithfulness on {len(batch)} image(s): deletion (lower is better) and insertion (higher) "
                        f"areas, mean ± std over the images; randomization (Adebayo et al. 2018, cascading, 3 seeds): "
                        f"passes when the rank correlation of |maps| with every layer random is below {THRESHOLD}")
    table.add_column("method", no_wrap=True)
    for col in ("removal", "deletion AUC (random order)", "insertion AUC (random order)", "randomization |ρ|",
                "verdict", "ms / image"):
        table.add_column(col)
    shared, target = {}, model.predict(batch)
    for m in methods:
        r = score_method(model, batch, m, removals=removal, target=target, random_curves=shared,
                         **_options(get_method(m), layer, steps))
        rz = r["randomization"]
        for name, v in r["removals"].items():
            table.add_row(m, name, f"{v['deletion']:.3f} ± {v['deletion_std']:.3f} ({v['random_deletion']:.3f})",
                          f"{v['insertion']:.3f} ± {v['insertion_std']:.3f} ({v['random_insertion']:.3f})",
                          f"{rz['final_spearman_abs']:.2f}", rz["verdict"], f"{r['ms_per_image']:.1f}")
    console.print(table)


@cli.command(epilog=examples(
    "seethrough report runs/digits-smallcnn",
    "seethrough report runs/cats-smallcnn --compare runs/cats-logreg --no-scores"))
@click.argument("run", type=click.Path())
@click.option("--data", default=None, help="Data set or folder for the test images (default: the run's own).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--compare", default=None, type=click.Path(file_okay=False),
              help="A run of the other kind (logistic regression or CNN) to show beside this one "
                   "(default: a sibling run folder on the same data, if any).")
@click.option("--no-scores", is_flag=True, help="Leave out the faithfulness section (the slowest).")
def report(run, data, data_dir, compare, no_scores):
    """Write RUN/report.html: curves, confusion, explanations, receptive fields, faithfulness."""
    from ..report.run_report import write_report

    path = write_report(run, data=data, data_dir=data_dir, compare=compare, scores=not no_scores, log=console.print)
    console.print(f"report: {path.resolve()}")

"""``seethrough explain`` (attribution maps as PNG overlays, optionally scored) and
``seethrough report`` (one self-contained HTML page about a run)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .app import cli, console


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


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--method", default="gradcam", show_default=True,
              help="saliency, smoothgrad, gradcam, occlusion, integrated_gradients, weight_map, "
                   "weight_x_input, or all (every method that suits the model).")
@click.option("--layer", default=None, help="Layer Grad-CAM reads (default: the last conv layer).")
@click.option("--target", default=None, help="Class to explain, by name or index (default: the predicted one).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder for the PNGs (default: RUN/explain).")
@click.option("--score", is_flag=True, help="Also score each method's faithfulness on these images.")
@click.option("--device", default="cpu", show_default=True)
def explain(run, images, method, layer, target, out, score, device):
    """Explain RUN's decision on each IMAGE: a heatmap over the image per method."""
    import time

    import numpy as np

    from ..errors import ModelError
    from ..explain import get_method
    from ..trained import TrainedModel
    from ..run import RunFolder
    from ..viz import overlay_png

    model = TrainedModel.load(run, device=device)
    methods = _methods(model, method)
    if layer is not None and not any(get_method(m).uses_layer for m in methods):
        raise ModelError(f"--layer applies to gradcam only, not to {', '.join(methods)}")
    batch = np.stack([model.to_input(p) for p in images])  # (N, H, W, C); bad files: one-line DataError
    pred = model.predict(batch)
    out = Path(out) if out else RunFolder(run).explain
    names = _out_names(images, methods, out)
    from .. import _io

    table = Table(title=f"explanations of {run}")
    for col in ("image", "prediction", "explained class", "method", "ms / image", "written to"):
        table.add_column(col)
    for m in methods:
        cls = get_method(m)
        t0 = time.perf_counter()
        with cls(model, **({"layer": layer} if cls.uses_layer else {})) as e:
            if target is not None:
                targets = e.resolve_target(target, len(batch))
            else:
                targets = [int(p) for p in pred]
            maps = e(batch, target=targets)
        ms = 1000 * (time.perf_counter() - t0) / len(batch)
        for i, path in enumerate(images):
            cls_name = model.class_names[targets[i]]
            title = f"{m}{' (' + e.layer + ')' if e.layer else ''}: class {cls_name}"
            _io.write_bytes(names[i, m], overlay_png(batch[i], maps[i], title, cls.signed))
            table.add_row(str(path), model.class_names[pred[i]], cls_name, m, f"{ms:.1f}", str(names[i, m]))
    console.print(table)
    console.print(f"overlays written to {out}")
    if score:
        _print_scores(model, batch, methods, layer)


def _print_scores(model, batch, methods, layer):
    from ..explain import get_method
    from ..explain.faithfulness import score as score_method

    table = Table(title=f"faithfulness on {len(batch)} image(s): deletion lower is better, insertion higher; "
                        "randomization correlation near 1 fails the sanity check")
    for col in ("method", "deletion AUC", "(random order)", "insertion AUC", "(random order)",
                "randomization corr.", "ms / image"):
        table.add_column(col)
    for m in methods:
        opts = {"layer": layer} if layer and get_method(m).uses_layer else {}
        r = score_method(model, batch, m, **opts)
        table.add_row(m, f"{r['deletion_auc']:.3f}", f"{r['random_deletion_auc']:.3f}", f"{r['insertion_auc']:.3f}",
                      f"{r['random_insertion_auc']:.3f}", f"{r['randomization_corr']:.2f}", f"{r['ms_per_image']:.1f}")
    console.print(table)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--data", default=None, help="Data set or folder for the test images (default: the run's own).")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--compare", default=None, type=click.Path(file_okay=False),
              help="A run of the other kind (logistic regression or CNN) to show beside this one "
                   "(default: a sibling run folder on the same data, if any).")
def report(run, data, data_dir, compare):
    """Write RUN/report.html: curves, confusion, explanations, receptive fields, faithfulness."""
    from ..report.run_report import write_report

    path = write_report(run, data=data, data_dir=data_dir, compare=compare, log=console.print)
    console.print(f"report: {path.resolve()}")

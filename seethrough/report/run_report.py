"""``seethrough report RUN``: one self-contained HTML page about one run folder.

Sections, each computed from the run's own model and test split:
training curves (metrics.jsonl); per-class accuracy; a confusion matrix whose cells
link to the test images in them; the most confidently wrong examples with Grad-CAM
and saliency; the first layer's kernels and a sample's feature maps through every
layer; the receptive-field table; learning over time (when trained with
``--snapshots``); logistic-regression weight maps beside a CNN's Grad-CAM on the same
images (when a sibling run of the other kind was trained on the same data); and the
faithfulness table of every attribution method.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .. import _io
from ..data import ImageDataset
from ..errors import SeethroughError
from ..evaluate import Evaluation, evaluate
from ..explain import applicable_methods, explain, receptive_field_table
from ..explain.faithfulness import score_methods
from ..models import has_conv, is_linear, make_spec
from ..run import RunFolder, load_test_split
from ..trained import TrainedModel
from ..explain.snapshots import load_snapshots
from ..viz import fig_to_png, grid_figure, overlay_row_figure
from . import figures
from .html import esc, html_table, img, img_src, page, section, table


# ------------------------------------------------------------------ inputs
def find_partner(run_dir: Path, model: TrainedModel) -> Path | None:
    """A sibling run on the same data of the other kind (logistic regression <-> CNN), newest first."""
    want_linear = not is_linear(model.spec)
    if not (want_linear and has_conv(model.spec)) and not is_linear(model.spec):
        return None
    candidates = []
    for other in Path(run_dir).resolve().parent.iterdir():
        if other == Path(run_dir).resolve() or not (other / "model.json").is_file():
            continue
        try:
            info = RunFolder(other).read_model_json()
            spec = make_spec(info["spec"])
        except SeethroughError:
            continue
        same = (info["class_names"] == model.class_names and tuple(info["input_shape"]) == model.input_shape
                and info.get("dataset") == model.facts.dataset)
        if same and (is_linear(spec) if want_linear else has_conv(spec)):
            candidates.append(other)
    return max(candidates, key=lambda p: (p / "model.safetensors").stat().st_mtime, default=None)


def thumb(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ sections
def curves_section(run_dir: Path) -> str:
    history = RunFolder(run_dir).read_metrics()
    if not history:
        return section("Training curves", "<p>No metrics.jsonl in this run folder.</p>", anchor="curves")
    return section("Training curves", img(figures.curves_png(history, run_dir.name), "training curves"),
                   anchor="curves")


def per_class_section(ev: Evaluation) -> str:
    rows = [[r["class"], f"{r['recall']:.1%}", f"{r['precision']:.1%}", f"{r['f1']:.3f}", r["support"]]
            for r in ev.per_class()]
    return section("Per-class accuracy", table(["class", "accuracy (recall)", "precision", "f1", "test images"], rows),
                   f'<p class="note">Overall test accuracy {ev.accuracy:.2%} on {len(ev.y_true)} images.</p>',
                   anchor="per-class")


def confusion_section(ev: Evaluation, test: ImageDataset, per_cell: int = 40) -> str:
    k = len(ev.class_names)
    names = [esc(c) for c in ev.class_names]
    rows = []
    for i in range(k):
        row = [f"<b>{names[i]}</b>"]
        for j in range(k):
            n = int(ev.confusion[i, j])
            row.append(f'<a href="#cell-{i}-{j}" title="true {names[i]}, predicted {names[j]}">{n}</a>' if n else "")
        rows.append(row)
    grid = html_table(["true \\ predicted"] + names, rows,
                      cell_class=lambda i, j: "diag" if j == i + 1 else None)
    cells = []
    for i in range(k):
        for j in range(k):
            idx = np.flatnonzero((ev.y_true == i) & (ev.y_pred == j))
            if not len(idx):
                continue
            shown = idx[:per_cell]
            thumbs = "".join(f'<img alt="test image {t}" title="#{t}" src="{img_src(thumb(test.images[t]))}">'
                             for t in shown)
            more = f" (first {per_cell})" if len(idx) > per_cell else ""
            cells.append(f'<div id="cell-{i}-{j}"><h4>true {names[i]}, predicted {names[j]}: '
                         f'{len(idx)} image(s){more}</h4><div class="thumbs">{thumbs}</div></div>')
    return section("Confusion matrix", grid,
                   '<p class="note">Rows: true class; columns: prediction. Click a count to see its test images.</p>',
                   "<h3>Test images by cell</h3>" + "".join(cells),
                   anchor="confusion")


def wrong_section(model: TrainedModel, ev: Evaluation, test: ImageDataset, n: int) -> str:
    idx = ev.wrong[:n]
    if not len(idx):
        return section("Most confidently wrong", "<p>No test image is misclassified.</p>", anchor="wrong")
    methods = [m for m in ("gradcam", "saliency") if m in applicable_methods(model)]
    if "gradcam" not in methods and "weight_x_input" in applicable_methods(model):
        methods.append("weight_x_input")
    maps = {m: explain(model, test.images[idx], m) for m in methods}
    parts = []
    for r, t in enumerate(idx):
        p, y = ev.y_pred[t], ev.y_true[t]
        title = (f"test #{t}: true {ev.class_names[y]}, predicted {ev.class_names[p]} "
                 f"({ev.proba[t, p]:.0%})")
        fig = overlay_row_figure(test.images[t], [(m, maps[m][r], m == "weight_x_input") for m in methods], title)
        parts.append(img(fig_to_png(fig), title))
    return section("Most confidently wrong", *parts,
                   f'<p class="note">Each map explains the predicted (wrong) class: {", ".join(methods)}.</p>',
                   anchor="wrong")


def layers_section(model: TrainedModel, test: ImageDataset, sample: int) -> str:
    parts = []
    if has_conv(model.spec):
        parts.append(img(figures.kernels_png(model), "kernels", "The first conv layer's learned kernels."))
    elif is_linear(model.spec):
        parts.append(img(figures.weight_maps_png(model), "weight maps",
                         "Each class's weights reshaped to the image (red: bright pixels vote for the class)."))
    label = test.class_names[test.labels[sample]]
    parts.append(f"<h3>Test image #{sample} (class {esc(label)}) through every layer</h3>")
    parts.append(img(fig_to_png(figures.image_grid_figure(test.images[[sample]], [label], 1, 1.5)), "input image"))
    for caption, png in figures.feature_maps_pngs(model, test.images[sample]):
        parts.append(img(png, caption, caption))
    from ..explain import feature_maps

    flat = [(n, a) for n, a in feature_maps(model, test.images[sample]) if a.ndim == 1]
    if flat:
        parts.append(table(["layer", "units", "largest values"],
                           [[n, len(a), ", ".join(f"{v:.2f}" for v in np.sort(a)[::-1][:5])] for n, a in flat]))
    return section("Kernels and feature maps", *parts, anchor="layers")


def receptive_section(model: TrainedModel) -> str:
    rows = [[r["layer"], r["kind"], r["output"], r["field"], r["jump"], r["start"]]
            for r in receptive_field_table(model)]
    return section("Receptive fields", table(["layer", "kind", "output", "field (input pixels)", "jump", "start"], rows),
                   '<p class="note">Computed from the spec: the input pixels one unit of each layer can see, the '
                   'step between neighbouring units, and where unit 0 starts (negative: in the padding).</p>',
                   anchor="receptive")


def snapshots_section(run_dir: Path) -> str:
    index, snaps = load_snapshots(run_dir)
    if not snaps:
        return ""
    parts = []
    first = np.stack([s["first_layer"] for _, s in snaps])  # (E, ...)
    epochs = [e for e, _ in snaps]
    if index["first_layer_kind"] == "kernels":
        shown = first[:, :8, 0]  # (E, 8, k, k): first input channel of the first 8 kernels
    else:
        w = first[:, :8]
        shown = w.mean(-1) if w.ndim == 5 else w[:, :, None]  # (E, 8, H, W)
    e, n = shown.shape[:2]
    parts.append(img(fig_to_png(grid_figure(shown.reshape(e * n, *shown.shape[2:]),
                                            [f"ep {ep}" if j == 0 else "" for ep in epochs for j in range(n)],
                                            cols=n, symmetric=True, size=0.8,
                                            suptitle=f"{index['first_layer']}: one row per epoch")),
                     "first-layer weights over epochs", "The first layer's weights after each epoch (top: first)."))
    for layer in index["map_layers"][:1] + index["map_layers"][-1:] if len(index["map_layers"]) > 1 \
            else index["map_layers"]:
        maps = np.stack([s[f"maps.{layer}"] for _, s in snaps])  # (E, c, h, w)
        c = min(8, maps.shape[1])
        parts.append(img(fig_to_png(grid_figure(maps[:, :c].reshape(-1, *maps.shape[2:]),
                                                [f"ep {ep}" if j == 0 else "" for ep in epochs for j in range(c)],
                                                cols=c, size=0.8, suptitle=f"{layer}: one row per epoch")),
                         f"{layer} over epochs", f"{layer}'s first {c} maps of the fixed image after each epoch."))
    return section("Learning over time", *parts, anchor="snapshots")


def comparison_section(model: TrainedModel, partner_dir: Path, test: ImageDataset, idx: np.ndarray) -> str:
    partner = TrainedModel.load(partner_dir)
    lr, cnn = (model, partner) if is_linear(model.spec) else (partner, model)
    lr_name, cnn_name = ((model.facts.model, partner_dir.name) if lr is model
                         else (partner_dir.name, model.facts.model))
    images = test.images[idx]
    pred_lr, pred_cnn = lr.predict(images), cnn.predict(images)
    wm = explain(lr, images, "weight_map", target=pred_lr)
    cam = explain(cnn, images, "gradcam", target=pred_cnn)
    parts = [img(figures.weight_maps_png(lr), "weight maps", f"{lr_name}: every class's weights.")]
    for r, t in enumerate(idx):
        fig = overlay_row_figure(images[r], [
            (f"LR weights, class {lr.class_names[pred_lr[r]]}", wm[r], True),
            (f"CNN Grad-CAM, class {cnn.class_names[pred_cnn[r]]}", cam[r], False)],
            f"test #{t} (true {test.class_names[test.labels[t]]})")
        parts.append(img(fig_to_png(fig), f"comparison {t}"))
    return section("Logistic regression beside the CNN", *parts,
                   f'<p class="note">{esc(lr_name)} (logistic regression) and {esc(cnn_name)} (CNN) on the same '
                   'test images. The weight map is one fixed template per class; Grad-CAM depends on the image.</p>',
                   anchor="compare")


def faithfulness_section(model: TrainedModel, test: ImageDataset, idx: np.ndarray) -> str:
    rows = score_methods(model, test.images[idx], steps=10)
    body = [[r["method"], f"{r['deletion_auc']:.3f}", f"{r['random_deletion_auc']:.3f}", f"{r['insertion_auc']:.3f}",
             f"{r['random_insertion_auc']:.3f}", f"{r['randomization_corr']:.2f}", f"{r['ms_per_image']:.1f}"]
            for r in rows]
    return section("Faithfulness", table(["method", "deletion AUC", "random order", "insertion AUC", "random order",
                                          "randomization corr.", "ms / image"], body),
                   f'<p class="note">On {len(idx)} test images. Deletion: lower than the random order is better; '
                   'insertion: higher is better (Petsiuk et al. 2018). Randomization: rank correlation between the '
                   'maps of the trained model and of a randomly initialised copy; near 1 means the map does not '
                   'depend on what the model learned (Adebayo et al. 2018).</p>', anchor="faithfulness")


# ------------------------------------------------------------------ the page
def build_report(run_dir, *, data=None, data_dir=None, compare=None, n_wrong=6, n_score=8, log=None) -> str:
    run_dir = Path(run_dir)
    log = log or (lambda *a: None)
    model = TrainedModel.load(run_dir)
    test = load_test_split(model, data, data_dir)
    ev = evaluate(model, test)
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(test), size=min(n_score, len(test)), replace=False))
    right = np.flatnonzero(ev.y_true == ev.y_pred)
    sample = int(right[0]) if len(right) else 0
    parts, t0 = [], time.perf_counter()
    steps = [("curves", lambda: curves_section(run_dir)), ("per-class", lambda: per_class_section(ev)),
             ("confusion", lambda: confusion_section(ev, test)),
             ("wrong", lambda: wrong_section(model, ev, test, n_wrong)),
             ("layers", lambda: layers_section(model, test, sample)),
             ("receptive fields", lambda: receptive_section(model)),
             ("snapshots", lambda: snapshots_section(run_dir))]
    partner = Path(compare) if compare else find_partner(run_dir, model)
    if partner is not None:
        steps.append(("comparison", lambda: comparison_section(model, partner, test, picked[:4])))
    steps.append(("faithfulness", lambda: faithfulness_section(model, test, picked)))
    for name, make in steps:
        parts.append(make())
        log(f"  {name}: {time.perf_counter() - t0:.1f} s")
    toc = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("curves", "curves"), ("per-class", "per class"), ("confusion", "confusion"), ("wrong", "wrong"),
        ("layers", "layers"), ("receptive", "receptive fields"), ("snapshots", "over time"),
        ("compare", "LR vs CNN"), ("faithfulness", "faithfulness")) if f'id="{a}"' in "".join(parts))
    subtitle = (f"model {model.facts.model} on {test.name}: test accuracy {ev.accuracy:.2%} "
                f"on {len(test)} images")
    return page(f"seethrough report: {run_dir.name}", f"<nav>{toc}</nav>", *parts, subtitle=subtitle)


def write_report(run_dir, **kwargs) -> Path:
    """Build the report and write ``run_dir/report.html`` atomically; return its path."""
    html = build_report(run_dir, **kwargs)
    path = RunFolder(run_dir).report
    _io.write_text(path, html)
    return path

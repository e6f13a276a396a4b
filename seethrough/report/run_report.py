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
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .. import _io
from ..data import ImageDataset
from ..errors import SeethroughError
from ..evaluate import Evaluation, evaluate
from ..explain import METHODS, applicable_methods, explain, receptive_field_table
from ..explain.faithfulness import score_methods
from ..models import has_conv, is_linear, make_spec
from ..run import RunFolder, load_test_split
from ..trained import TrainedModel
from ..explain.snapshots import load_snapshots
from ..viz import fig_to_png, grid_figure, overlay_row_figure, reliability_figure
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
    files = test.info.get("files") if isinstance(test.info, dict) else None
    for i in range(k):
        for j in range(k):
            idx = np.flatnonzero((ev.y_true == i) & (ev.y_pred == j))
            if not len(idx):
                continue
            shown = idx[:per_cell]
            thumbs = "".join(thumb_html(test, t, files) for t in shown)
            more = f" (first {per_cell})" if len(idx) > per_cell else ""
            state = "" if i == j else " open"  # the wrong cells are open, the right ones one click away
            cells.append(f'<details id="cell-{i}-{j}"{state}><summary>true {names[i]}, predicted {names[j]}: '
                         f'{len(idx)} image(s){more}</summary><div class="thumbs">{thumbs}</div></details>')
    return section("Confusion matrix", grid,
                   '<p class="note">Rows: true class; columns: prediction. Click a count to see its test images; '
                   'the cells of wrong predictions are open below, the right ones open on a click.</p>',
                   "<h3>Test images by cell</h3>" + "".join(cells) + OPEN_ON_LINK,
                   anchor="confusion")


# opens the <details> a link points at (the report's only script; the page works without it)
OPEN_ON_LINK = ("<script>function openCell(){const d=document.getElementById(location.hash.slice(1));"
                "if(d&&d.tagName==='DETAILS'){d.open=true;d.scrollIntoView();}}"
                "addEventListener('hashchange',openCell);openCell();</script>")


def thumb_html(test: ImageDataset, t: int, files: list | None) -> str:
    """One test thumbnail; with folder data its file name is in the tooltip and under the image."""
    if files is not None and t < len(files):
        name = esc(Path(files[t]).name)
        return (f'<figure class="thumb"><img alt="{name}" title="#{t}: {esc(files[t])}" '
                f'src="{img_src(thumb(test.images[t]))}"><figcaption>{name}</figcaption></figure>')
    return f'<img alt="test image {t}" title="#{t}" src="{img_src(thumb(test.images[t]))}">'


def wrong_section(model: TrainedModel, ev: Evaluation, test: ImageDataset, n: int) -> str:
    idx = ev.wrong[:n]
    if not len(idx):
        return section("Most confidently wrong", "<p>No test image is misclassified.</p>", anchor="wrong")
    methods = [m for m in ("gradcam", "saliency") if m in applicable_methods(model)]
    if "gradcam" not in methods and "weight_x_input" in applicable_methods(model):
        methods.append("weight_x_input")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant map is labelled on its picture
        maps = {m: explain(model, test.images[idx], m) for m in methods}
    parts = []
    for r, t in enumerate(idx):
        p, y = ev.y_pred[t], ev.y_true[t]
        title = (f"test #{t}: true {ev.class_names[y]}, predicted {ev.class_names[p]} "
                 f"({ev.proba[t, p]:.0%})")
        fig = overlay_row_figure(test.images[t], [(m, maps[m][r], METHODS[m].signed) for m in methods], title)
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
    parts.append(img(fig_to_png(grid_figure(shown.reshape(e * n, *shown.shape[2:]), cols=n, symmetric=True,
                                            size=0.8, row_labels=[f"ep {ep}" for ep in epochs],
                                            suptitle=f"{index['first_layer']} weights: one row per epoch")),
                     "first-layer weights over epochs", "The first layer's weights after each epoch (top: first)."))
    for layer in index["map_layers"][:1] + index["map_layers"][-1:] if len(index["map_layers"]) > 1 \
            else index["map_layers"]:
        maps = np.stack([s[f"maps.{layer}"] for _, s in snaps])  # (E, c, h, w)
        c = min(8, maps.shape[1])
        parts.append(img(fig_to_png(grid_figure(maps[:, :c].reshape(-1, *maps.shape[2:]), cols=c, size=0.8,
                                                row_labels=[f"ep {ep}" for ep in epochs],
                                                suptitle=f"{layer} feature maps of the fixed image: "
                                                         "one row per epoch")),
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


def calibration_section(model: TrainedModel, ev: Evaluation) -> str:
    """How sure the model is against how often it is right, before and after temperature scaling;
    the unfamiliar-image threshold; where the weights came from."""
    from ..calibrate import reliability

    cal = model.meta.get("calibration")
    raw = ev.proba if ev.proba_uncalibrated is None else ev.proba_uncalibrated
    panels = [("softmax (temperature 1)", reliability(raw, ev.y_true))]
    notes = []
    if cal:
        panels.append((f"temperature {cal['temperature']:.2f}", reliability(ev.proba, ev.y_true)))
        notes.append(f"The temperature {cal['temperature']:.3f} was fitted on the {cal['n']} validation images "
                     f"(their ECE {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after); on the "
                     f"{len(ev.y_true)} test images the ECE (15 bins) is {ev.ece_uncalibrated:.3f} before and "
                     f"{ev.ece:.3f} after. predict, serve and the web page use the calibrated probabilities.")
    else:
        notes.append("No temperature was fitted (the run held out no validation images), so the probabilities "
                     "are the raw softmax.")
    unf = model.meta.get("unfamiliar")
    if unf and ev.unfamiliar is not None:
        notes.append(f"Unfamiliar images: an image whose energy score -T log sum exp(logits / T) is above "
                     f"{unf['threshold']:.3f} is marked; that threshold marks {unf['false_alarm_rate']:.0%} of the "
                     f"validation images and {ev.unfamiliar.mean():.1%} of these test images.")
    origin = model.meta.get("init_from")
    if origin:
        notes.append(f"Started from {esc(str(origin['source']))} (weights SHA-256 {origin['sha256'][:12]}..., "
                     f"layers {esc(origin['layers'][0])} to {esc(origin['layers'][-1])}"
                     f"{', frozen' if origin.get('freeze') else ''}).")
    fig = fig_to_png(reliability_figure(panels, "Reliability on the test split"))
    return section("Calibration", img(fig, "reliability diagram"),
                   "".join(f'<p class="note">{n}</p>' for n in notes), anchor="calibration")


def _describe_origin(model: TrainedModel) -> str:
    origin = model.meta.get("init_from")
    kind = "logistic regression on pixels" if is_linear(model.spec) else model.meta.get("model", "custom")
    if not origin:
        return f"{kind}, from scratch"
    source = "the bundled CIFAR-10 network" if origin.get("bundled") else Path(origin["source"]).name
    if origin.get("features"):
        return f"logistic regression on {source}'s {origin['features']} features"
    return f"{source}, {'head only' if origin.get('freeze') else 'fine-tuned'}"


def siblings_section(run_dir: Path, model: TrainedModel, test: ImageDataset, data=None, data_dir=None) -> str:
    """Every run beside this one trained on the same data, scored on the same test images."""
    here = Path(run_dir).resolve()
    rows = []
    for other in sorted(here.parent.iterdir()):
        if not (other / "model.json").is_file():
            continue
        try:
            info = RunFolder(other).read_model_json()
            if info["class_names"] != model.class_names or info.get("dataset") != model.meta.get("dataset"):
                continue
            m = model if other == here else TrainedModel.load(other)
            ev = evaluate(m, test if m is model else load_test_split(m, data, data_dir))
        except SeethroughError:
            continue
        name = f"<b>{esc(other.name)}</b>" if other == here else esc(other.name)
        rows.append([name, esc(_describe_origin(m)), f"{ev.accuracy:.2%}",
                     f"{ev.ece_uncalibrated:.3f}", f"{ev.ece:.3f}"])
    if len(rows) < 2:
        return ""
    return section("Models on the same test images", table(["run", "model", "test accuracy", "ECE (softmax)",
                                                            "ECE (calibrated)"], rows),
                   f'<p class="note">Every run folder beside this one trained on {esc(test.name)} with the same '
                   f'classes, scored on the same {len(test)} test images (this run in bold).</p>', anchor="siblings")


def faithfulness_section(model: TrainedModel, test: ImageDataset, idx: np.ndarray) -> str:
    from ..explain.randomization import THRESHOLD
    from ..explain.removal import REMOVALS

    rows = score_methods(model, test.images[idx], steps=10)
    body = []
    for r in rows:
        rz = r["randomization"]
        for n, (removal, v) in enumerate(r["removals"].items()):
            body.append([r["method"] if n == 0 else "", removal, f"{v['deletion']:.3f} ± {v['deletion_std']:.3f}",
                         f"{v['random_deletion']:.3f}", f"{v['insertion']:.3f} ± {v['insertion_std']:.3f}",
                         f"{v['random_insertion']:.3f}",
                         f"{rz['final_spearman_abs']:.2f} ({rz['verdict']})" if n == 0 else "",
                         f"{r['ms_per_image']:.1f}" if n == 0 else ""])
    steps = [[r["method"]] + [f"{s['spearman_abs']:.2f} / {s['spearman']:.2f} / {s['ssim']:.2f}"
                              for s in r["randomization"]["steps"]]
             + [f"{r['randomization']['constant_randomized']} of {r['randomization']['randomized_maps']}"]
             for r in rows]
    header = [s["randomized"] for s in rows[0]["randomization"]["steps"]] if rows else []
    ig = [r for r in rows if "ig" in r]
    ig_note = (f'<p class="note">Integrated gradients: steps {min(ig[0]["ig"]["steps"])}..{max(ig[0]["ig"]["steps"])} '
               f'per image; the largest convergence delta is {ig[0]["ig"]["max_relative_delta"]:.2%} of '
               '|f(x) - f(baseline)|.</p>') if ig else ""
    return section("Faithfulness",
                   table(["method", "removal", "deletion AUC", "random order", "insertion AUC", "random order",
                          "randomization |ρ| (verdict)", "ms / image"], body),
                   f'<p class="note">On {len(idx)} test images; areas are the mean ± std over the images. Deletion: '
                   'lower than the random order is better; insertion: higher is better (Petsiuk et al. 2018). '
                   f'Removals ({", ".join(REMOVALS)}): ROAD\'s noisy linear imputation (Rong et al. 2022), a '
                   'blurred copy, the training mean colour (the baseline integrated gradients and occlusion '
                   'use, which favours them) and black. Randomization (Adebayo et al. 2018): the layers are '
                   're-initialised from the top down, 3 seeds; a method passes when the rank correlation of its '
                   f'absolute maps with every layer random is below {THRESHOLD}.</p>', ig_note,
                   "<h3>Cascading randomization, step by step</h3>",
                   table(["method"] + [f"random: {h}" for h in header] + ["constant maps"], steps),
                   '<p class="note">Each cell: Spearman correlation of |maps| / of the signed maps / SSIM, trained '
                   'against randomized, mean over images and seeds. Constant maps (no rank) are counted and left '
                   'out of the means.</p>', anchor="faithfulness")


def experiments_section(run_dir: Path) -> str:
    """The experiments saved in the run folder (``seethrough experiment ... `` wrote them): figure and table."""
    from ..experiments import load_results

    parts = []
    for name, result, png in load_results(run_dir):
        caption, body = name, ""
        if result.get("experiment") == "learning-curve":
            caption = (f"test accuracy on {result.get('data')} against training images, "
                       f"{result.get('seeds')} seeds per size (seethrough experiment learning-curve)")
            rows = [[r["model"], r["size"], f"{r['mean']:.2%}", f"{r['std']:.2%}", r["seeds"]]
                    for r in result.get("summary", [])]
            body = table(["model", "training images", "mean accuracy", "std", "seeds"], rows)
        elif result.get("experiment") == "invariance":
            caption = (f"accuracy of {', '.join(result.get('runs', []))} with the test images under "
                       f"{', '.join(result.get('transforms', []))} (seethrough experiment invariance)")
            rows = [[r["run"], r["transform"], f"{r['level']:g}", f"{r['accuracy']:.2%}"] for r in result.get("rows", [])]
            body = table(["run", "transform", "strength", "accuracy"], rows)
        figure = img(png.read_bytes(), name, caption) if png else ""
        parts.append(f"<h3>{esc(name)}</h3>{figure}<details><summary>table</summary>{body}</details>")
    if not parts:
        return ""
    return section("Experiments", *parts, anchor="experiments")


# ------------------------------------------------------------------ the page
def build_report(run_dir, *, data=None, data_dir=None, compare=None, n_wrong=6, n_score=8, scores=True,
                 log=None) -> str:
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
             ("calibration", lambda: calibration_section(model, ev)),
             ("same test images", lambda: siblings_section(run_dir, model, test, data, data_dir)),
             ("wrong", lambda: wrong_section(model, ev, test, n_wrong)),
             ("layers", lambda: layers_section(model, test, sample)),
             ("receptive fields", lambda: receptive_section(model)),
             ("snapshots", lambda: snapshots_section(run_dir))]
    partner = Path(compare) if compare else find_partner(run_dir, model)
    if partner is not None:
        steps.append(("comparison", lambda: comparison_section(model, partner, test, picked[:4])))
    if scores:
        steps.append(("faithfulness", lambda: faithfulness_section(model, test, picked)))
    steps.append(("experiments", lambda: experiments_section(run_dir)))
    for n, (name, make) in enumerate(steps, 1):
        t1 = time.perf_counter()
        log(f"  [{n}/{len(steps)}] {name} ...")
        parts.append(make())
        log(f"  [{n}/{len(steps)}] {name}: {time.perf_counter() - t1:.1f} s (total {time.perf_counter() - t0:.1f} s)")
    toc = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("curves", "curves"), ("per-class", "per class"), ("confusion", "confusion"), ("calibration", "calibration"),
        ("siblings", "other runs"), ("wrong", "wrong"),
        ("layers", "layers"), ("receptive", "receptive fields"), ("snapshots", "over time"),
        ("compare", "LR vs CNN"), ("faithfulness", "faithfulness"), ("experiments", "experiments")) if f'id="{a}"' in "".join(parts))
    subtitle = (f"model {model.facts.model} on {test.name}: test accuracy {ev.accuracy:.2%} "
                f"on {len(test)} images")
    return page(f"seethrough report: {run_dir.name}", f"<nav>{toc}</nav>", *parts, subtitle=subtitle)


def write_report(run_dir, **kwargs) -> Path:
    """Build the report and write ``run_dir/report.html`` atomically; return its path."""
    html = build_report(run_dir, **kwargs)
    path = RunFolder(run_dir).report
    _io.write_text(path, html)
    return path

"""How seethrough's objects draw themselves in a Jupyter notebook.

Every ``_repr_html_`` in the library is one line that calls a function here, so the HTML of
the notebook display lives in one place:

- :func:`model_html`: a :class:`~seethrough.trained.TrainedModel`'s layer table (name, layer,
  output shape, parameters);
- :func:`evaluation_html`: accuracy, the per-class table and the confusion matrix as a picture;
- :func:`dataset_html`: a grid of sample images, one row per class;
- :func:`lesson_html`: a lesson's page (``seethrough.lesson("convolution")``);
- :class:`Explanation` (from :func:`explanation`): attribution maps with the image under them.
  ``seethrough.explain`` still returns plain arrays; ``seethrough.explanation`` runs the same
  methods and returns this object, whose ``maps`` hold those arrays;
- :class:`NotebookProgress`: the training progress bar inside a notebook.

The HTML is a fragment (no ``<html>``/``<body>``) styled under one class, ``st-out``, so it
does not restyle the notebook around it. Pictures are embedded as base64 PNG.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np

CSS = (".st-out{font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#222}"
       ".st-out table{border-collapse:collapse;margin:.4em 0}"
       ".st-out td,.st-out th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
       ".st-out th{background:#f4f4f4}.st-out td:first-child,.st-out th:first-child{text-align:left}"
       ".st-out .note{color:#555;font-size:.9em}.st-out img{max-width:100%}"
       ".st-out img.px{image-rendering:pixelated}.st-out .row{display:flex;flex-wrap:wrap;gap:1.5em;"
       "align-items:flex-start}.st-out h3{margin:.3em 0}.st-out .grid table td{min-width:2.2em}")


def _wrap(*parts: str) -> str:
    return f'<div class="st-out"><style>{CSS}</style>{"".join(parts)}</div>'


def _esc(text) -> str:
    from .report.html import esc

    return esc(text)


def _table(header, rows) -> str:
    from .report.html import table

    return table(header, rows)


def _img(png: bytes, alt: str, pixelated: bool = False, width: int | None = None) -> str:
    from .report.html import img_src

    w = f' width="{width}"' if width else ""
    cls = ' class="px"' if pixelated else ""
    return f'<img{cls}{w} alt="{_esc(alt)}" src="{img_src(png)}">'


def in_notebook() -> bool:
    """True inside a Jupyter kernel (rich's test: the IPython shell is a ZMQ one)."""
    from rich.console import Console

    return Console().is_jupyter


# ---------------------------------------------------------------------------------- the model
def model_html(model) -> str:
    """A TrainedModel as its layer table, with the input and the parameter count."""
    from .models.spec import describe

    rows = describe(model.spec, model.in_chw)
    total = sum(r["params"] for r in rows)
    h, w, c = model.input_shape
    body = [[r["name"], r["layer"], " x ".join(map(str, r["output_shape"])), f"{r['params']:,}"] for r in rows]
    name = model.meta.get("model", "custom")
    data = model.meta.get("dataset")
    head = (f"<h3>TrainedModel: {_esc(name)}</h3><p class=\"note\">input {h}x{w}x{c}"
            f"{', trained on ' + _esc(data) if data else ''}; {len(model.class_names)} classes: "
            f"{_esc(', '.join(model.class_names[:12]))}{' ...' if len(model.class_names) > 12 else ''}</p>")
    return _wrap(head, _table(["layer", "spec", "output (C x H x W)", "parameters"], body),
                 f'<p class="note">{total:,} parameters in all</p>')


# ---------------------------------------------------------------------------------- evaluation
def confusion_png(cm: np.ndarray, class_names: list[str]) -> bytes:
    from .viz.figures import confusion_figure, fig_to_png

    return fig_to_png(confusion_figure(cm, class_names), dpi=80)


def evaluation_html(ev) -> str:
    """An Evaluation as its accuracy, per-class precision/recall/F1 and the confusion matrix."""
    rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
            for r in ev.per_class()]
    head = (f"<h3>Evaluation: accuracy {ev.accuracy:.2%}</h3><p class=\"note\">{len(ev.y_true):,} images, "
            f"{int((ev.y_true != ev.y_pred).sum()):,} wrong</p>")
    table = _table(["class", "precision", "recall", "F1", "images"], rows)
    return _wrap(head, f'<div class="row"><div>{table}</div><div>'
                       f'{_img(confusion_png(ev.confusion, ev.class_names), "confusion matrix")}</div></div>')


# ---------------------------------------------------------------------------------- data sets
def mosaic_png(images: np.ndarray, scale: int) -> bytes:
    """uint8 (N, H, W, C) images side by side in one PNG, each enlarged ``scale`` times (nearest)."""
    from PIL import Image

    n, h, w, c = images.shape
    strip = np.full((h, n * (w + 1) - 1, c), 255, np.uint8)  # one white column between images
    for i, im in enumerate(images):
        strip[:, i * (w + 1):i * (w + 1) + w] = im
    pil = Image.fromarray(strip[..., 0] if c == 1 else strip)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def dataset_html(data, per_class: int = 8, max_classes: int = 20, seed: int = 0) -> str:
    """An ImageDataset as its size and a row of sample images for each class."""
    h, w, c = data.image_shape
    scale = max(1, 48 // max(h, w))
    rng = np.random.default_rng(seed)
    counts = np.bincount(data.labels, minlength=data.n_classes)
    rows = []
    for k, name in enumerate(data.class_names[:max_classes]):
        idx = np.flatnonzero(data.labels == k)
        if len(idx) == 0:
            rows.append([_esc(name), "0", ""])
            continue
        pick = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
        rows.append([_esc(name), f"{counts[k]:,}", _img(mosaic_png(np.asarray(data.images[pick]), scale),
                                                        f"samples of {name}", pixelated=True)])
    from .report.html import html_table

    more = (f'<p class="note">... and {data.n_classes - max_classes} more classes</p>'
            if data.n_classes > max_classes else "")
    head = (f"<h3>ImageDataset: {_esc(data.name)}</h3><p class=\"note\">{len(data):,} images of {h}x{w}x{c}, "
            f"{data.n_classes} classes</p>")
    return _wrap(head, html_table(["class", "images", "samples"], rows), more)


# ---------------------------------------------------------------------------------- lessons
def lesson_html(lesson) -> str:
    """A lesson's blocks (text, number grids, tables, figures), as its HTML page draws them."""
    from .lessons.render import lesson_body

    return _wrap(f"<h3>Lesson: {_esc(lesson.title)}</h3>", lesson_body(lesson))


# ---------------------------------------------------------------------------------- explanations
@dataclass
class Explanation:
    """Attribution maps of some images, drawn over them in a notebook.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W, C)
        The images at the model's input size.
    maps : dict of str to ndarray
        Method name -> float32 (N, H, W) map, what ``seethrough.explain`` returns for it.
    predicted : list of str
        The class each image is predicted to be (and explained for, unless ``target`` was given).
    target : str or None
    """

    images: np.ndarray
    maps: dict
    predicted: list
    target: str | None = None
    signed: dict = field(default_factory=dict)  # method -> True for signed maps (drawn red/blue)

    def __getitem__(self, method: str) -> np.ndarray:
        return self.maps[method]

    def _repr_html_(self) -> str:
        return explanation_html(self)


def explanation(model, images, method="gradcam", *, target=None, layer=None, **options) -> Explanation:
    """Run one or several attribution methods (``method`` a name or a list) and keep the images.

    Same arguments as :func:`seethrough.explain`; the result shows the overlays in a notebook and
    holds the arrays in ``.maps[method]`` as (N, H, W).
    """
    from .explain import explain
    from .explain.base import as_model

    tm = as_model(model)
    batch = _as_batch(tm, images)
    methods = [method] if isinstance(method, str) else list(method)
    maps = {}
    for m in methods:
        heat = explain(tm, batch, method=m, target=target, layer=layer if m == "gradcam" else None, **options)
        maps[m] = np.asarray(heat).reshape(len(batch), *batch.shape[1:3])
    predicted = [tm.class_names[i] for i in tm.predict(batch)]
    signed = {m: m in ("integrated_gradients", "weight_map", "weight_x_input") for m in methods}
    return Explanation(batch, maps, predicted, None if target is None else str(target), signed)


def _as_batch(model, images) -> np.ndarray:
    """A path, an array, or a list of those -> uint8 (N, H, W, C) at the model's input size."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return np.stack([model.to_input(im) for im in images])
    if isinstance(images, (list, tuple)):
        return np.stack([model.to_input(im) for im in images])
    return model.to_input(images)[None]


def explanation_html(ex: Explanation, limit: int = 8) -> str:
    from .viz.figures import fig_to_png
    from .viz.overlay import overlay_row_figure

    parts = []
    for i in range(min(limit, len(ex.images))):
        heats = [(m, ex.maps[m][i], ex.signed.get(m, False)) for m in ex.maps]
        title = f"predicted {ex.predicted[i]}" + (f", explained for {ex.target}" if ex.target else "")
        parts.append(_img(fig_to_png(overlay_row_figure(ex.images[i], heats, title), dpi=80), title))
    more = f'<p class="note">first {limit} of {len(ex.images)} images</p>' if len(ex.images) > limit else ""
    return _wrap(f"<h3>Explanation: {_esc(', '.join(ex.maps))}</h3>", *parts, more)


# ---------------------------------------------------------------------------------- progress
def bar_html(fraction: float, text: str) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div class="st-out"><div style="display:flex;gap:1em;align-items:center;font-family:monospace">'
            f'<div style="width:240px;height:12px;background:#e5e5e5;border-radius:3px">'
            f'<div style="width:{pct:.1f}%;height:100%;background:#3a7bd5;border-radius:3px"></div></div>'
            f"<span>{_esc(text)}</span></div></div>")


class NotebookProgress:
    """The training progress bar as one HTML output that is updated in place.

    rich's own bar needs ipywidgets in a notebook and shows nothing without it; an updated
    display (``display_id``) works in every front end and is kept in the saved notebook.
    Same interface as the training loop's terminal bar: a context manager with
    ``update(epoch, step, steps_per_epoch, loss=, acc=, ips=)``, ``epoch_done(row, done, left)``
    and ``log(text)``.
    """

    def __init__(self, epochs: int, steps: int, every: float = 0.25):
        self.epochs, self.steps, self.every = epochs, max(1, steps), every
        self.handle, self.last, self.t0, self.text = None, 0.0, time.perf_counter(), ""
        self.bar = self  # the loop asks ``bar.bar is not None`` before computing the numbers to show

    def __enter__(self):
        from IPython.display import HTML, display

        self.handle = display(HTML(bar_html(0, f"epoch 0/{self.epochs}")), display_id=True)
        return self

    def __exit__(self, *exc):
        self._show(self.done, force=True)

    done = 0  # steps finished

    def update(self, epoch, step, steps_per_epoch, loss=0.0, acc=0.0, ips=0.0, **_):
        self.done = epoch * steps_per_epoch + step
        self.text = (f"epoch {epoch + 1}/{self.epochs}  loss {loss:.4f}  acc {acc:.1%}  {ips:,.0f} img/s")
        self._show(self.done)

    def _show(self, done, force: bool = False):
        now = time.perf_counter()
        if self.handle is None or (not force and now - self.last < self.every):
            return
        self.last = now
        from IPython.display import HTML

        elapsed = now - self.t0
        self.handle.update(HTML(bar_html(done / self.steps, f"{self.text}  {elapsed:.1f} s")))

    def epoch_done(self, row: dict, done: int, left: int):
        """One plain line for a finished epoch, as in the terminal: its metrics and the time left."""
        from .train.loop import epoch_line

        per_epoch = (time.perf_counter() - self.t0) / max(1, done)
        self.log(epoch_line(row, self.epochs, left * per_epoch if left else None))

    def log(self, text: str):
        print(text)


def progress_bar(enabled: bool, epochs: int, steps: int, terminal):
    """The bar training shows: :class:`NotebookProgress` in a notebook, else ``terminal(...)``."""
    if enabled and in_notebook():
        return NotebookProgress(epochs, steps)
    return terminal(enabled, epochs, steps)

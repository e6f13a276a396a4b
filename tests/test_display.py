"""Notebook display: each object's _repr_html_ shows what it holds, and the notebook progress bar."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

import seethrough as st
from seethrough.display import NotebookProgress, bar_html, mosaic_png
from seethrough.evaluate import evaluate_predictions
from seethrough.models.spec import count_params
from seethrough.train import new_model


def _pngs(html: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]


def test_model_html_lists_every_layer_and_the_parameter_total(tiny_images):
    model = new_model("smallcnn", tiny_images)
    html = model._repr_html_()
    for layer in model.spec:
        assert f"<td>{layer.name}</td>" in html
    total = count_params(model.spec, model.in_chw)
    assert total == sum(p.numel() for p in model.net.parameters())  # the oracle: PyTorch's own count
    assert f"{total:,} parameters in all" in html
    assert "64 x 3 x 3" in html  # smallcnn's last pooled shape on 12x12 images
    assert '<div class="st-out">' in html and "<body" not in html  # a fragment, styled under one class


def test_evaluation_html_has_accuracy_per_class_rows_and_a_confusion_picture():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    ev = evaluate_predictions(y, proba, ["a", "b", "c"])
    html = ev._repr_html_()
    assert "accuracy 66.67%" in html and "2 wrong" in html
    assert html.count("<tr><td>") == 3  # one row per class
    (png,) = _pngs(html)
    assert png.width > 100 and png.height > 100


def test_dataset_html_shows_a_row_of_samples_per_class(tiny_images):
    html = tiny_images._repr_html_()
    assert "90 images of 12x12x3" in html
    pngs = _pngs(html)
    assert len(pngs) == 3
    scale = 48 // 12
    assert pngs[0].size == ((8 * 13 - 1) * scale, 12 * scale)  # 8 images with 1-pixel gaps, enlarged


def test_mosaic_keeps_the_pixels():
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1) * 10
    png = Image.open(io.BytesIO(mosaic_png(images, 1)))
    a = np.asarray(png)
    np.testing.assert_array_equal(a[:, :3], images[0, ..., 0])
    np.testing.assert_array_equal(a[:, 4:], images[1, ..., 0])
    assert (a[:, 3] == 255).all()


def test_lesson_is_drawn_as_its_page_body():
    lesson = st.lesson("convolution")
    html = lesson._repr_html_()
    assert "Lesson: Convolution" in html or "Lesson: convolution" in html.lower()
    from seethrough.lessons.render import lesson_body, lesson_html

    assert lesson_body(lesson) in html and lesson_body(lesson) in lesson_html(lesson)
    with pytest.raises(st.SeethroughError, match="unknown lesson"):
        st.lesson("nope")


def test_explanation_holds_what_explain_returns_and_draws_overlays(tiny_images):
    from seethrough.train import TrainConfig, fit

    model = new_model("smallcnn", tiny_images)
    fit(model, tiny_images, TrainConfig(epochs=1, device="cpu"))
    images = tiny_images.images[:2]
    ex = st.explanation(model, images, method=["gradcam", "saliency"])
    for m in ("gradcam", "saliency"):
        np.testing.assert_allclose(ex[m], st.explain(model, images, method=m), rtol=1e-5, atol=1e-6)
    assert ex.predicted == [model.class_names[i] for i in model.predict(images)]
    html = ex._repr_html_()
    assert len(_pngs(html)) == 2  # one row of overlays per image
    one = st.explanation(model, images[0], method="gradcam")
    assert one["gradcam"].shape == (1, 12, 12)


def test_notebook_progress_updates_one_display(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=None: shown.append(obj.data) or Handle())
    with NotebookProgress(epochs=2, steps=10, every=0) as bar:
        bar.update(0, 5, 5, loss=1.5, acc=0.5, ips=100.0)
        bar.update(1, 5, 5, loss=0.5, acc=0.75, ips=100.0)
    assert "epoch 2/2" in shown[-1] and "loss 0.5000" in shown[-1] and "width:100.0%" in shown[-1]
    assert "width:0.0%" in bar_html(-1, "x") and "width:100.0%" in bar_html(3, "x")

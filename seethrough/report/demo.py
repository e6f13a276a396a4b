"""The demo's report: two models on the same test set, side by side."""

from __future__ import annotations

from ..data.dataset import ImageDataset
from ..models import has_conv, is_linear
from . import figures
from .html import esc, img, page, section, table


def demo_report(results: list[dict], test: ImageDataset, sample_index: int) -> str:
    """``results``: [{"name", "model", "evaluation", "history", "seconds"}, ...]."""
    rows = [[r["name"], r["model"].facts.model, f"{r['evaluation'].accuracy:.2%}",
             f"{r['seconds']:.1f}", len(r["history"])] for r in results]
    parts = [section("Test accuracy",
                     table(["run", "model", "test accuracy", "train seconds", "epochs"], rows),
                     f'<p class="note">{len(test)} held-out test images of {esc(test.name)}.</p>')]
    for r in results:
        m, ev = r["model"], r["evaluation"]
        body = [f"<p>Test accuracy: <b>{ev.accuracy:.2%}</b></p>",
                "<h3>Training curves</h3>", img(figures.curves_png(r["history"], r["name"]), "training curves"),
                "<h3>Confusion matrix (test split)</h3>",
                img(figures.confusion_png(ev, f"{r['name']}: confusion matrix"), "confusion matrix")]
        if is_linear(m.spec):
            body.append("<h3>Logistic-regression weights per class</h3>")
            body.append(img(figures.weight_maps_png(m), "weight maps",
                            "Each class's weights reshaped to the image (red: bright pixels here vote for "
                            "the class; blue: against)."))
        if has_conv(m.spec):
            body.append("<h3>First-layer kernels</h3>")
            body.append(img(figures.kernels_png(m), "kernels", "The first conv layer's learned 3x3 kernels."))
            label = test.class_names[test.labels[sample_index]]
            body.append(f"<h3>Feature maps of test image #{sample_index} (class {esc(label)})</h3>")
            body.append(img(figures.fig_to_png(figures.image_grid_figure(test.images[[sample_index]], [label], 1, 1.5)),
                            "input image"))
            for caption, png in figures.feature_maps_pngs(m, test.images[sample_index]):
                body.append(img(png, caption, caption))
        wrong = figures.wrong_png(ev, test)
        n_wrong = len(ev.wrong)
        body.append(f"<h3>Misclassified test images ({n_wrong})</h3>")
        body.append(img(wrong, "misclassified", "Most confidently wrong first.") if wrong else "<p>None.</p>")
        parts.append(section(f"{r['name']} ({m.facts.model})", *body))
    return page("seethrough demo", *parts,
                subtitle="Logistic regression and a small CNN trained on scikit-learn's 8x8 digits.")

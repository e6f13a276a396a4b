"""Attribution methods against oracles: finite differences, completeness, a split network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seethrough as st
from seethrough.errors import DataError, ModelError
from seethrough.explain import METHODS, applicable_methods, explain, make_explainer
from seethrough.models import list_models

from explain_helpers import random_images, random_model

SPEC = ["conv(out=4, k=3, pad=1)", "relu", "maxpool(k=2)", "conv(out=6, k=3)", "relu",
        "flatten", "linear(out=3)"]


def no_hooks(model) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in model.net.modules())


def test_saliency_matches_finite_differences():
    model = random_model(SPEC, (10, 10, 2), dtype=torch.float64)
    image = random_images(1, (10, 10, 2))
    target = 1
    sal = explain(model, image, "saliency", target=target)[0]  # w.r.t. pixels: d input / d pixel = 1 / 60
    std_sal = explain(model, image, "saliency", target=target, space="standardised")[0]
    x = model.prepare(image).double()
    eps = 1e-6
    rng = np.random.default_rng(0)
    for _ in range(8):
        i, j = rng.integers(0, 10, 2)
        fd = []
        for ch in range(2):
            d = torch.zeros_like(x)
            d[0, ch, i, j] = eps
            with torch.no_grad():
                fd.append(((model.net(x + d) - model.net(x - d))[0, target] / (2 * eps)).item())
        assert std_sal[i, j] == pytest.approx(max(abs(v) for v in fd), rel=1e-4, abs=1e-7)
        assert sal[i, j] == pytest.approx(max(abs(v) for v in fd) / 60, rel=1e-4, abs=1e-9)


def test_gradcam_matches_a_split_network():
    model = random_model(SPEC, (12, 12, 1))
    images = random_images(3, (12, 12, 1))
    cam = explain(model, images, "gradcam")  # default layer: the last conv, conv2
    x = model.prepare(images)
    head, tail = model.net[:4], model.net[4:]  # conv2 is the 4th child
    acts = head(x).detach().requires_grad_(True)
    logits = tail(acts)
    target = logits.argmax(1)
    grads, = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), acts)
    weights = grads.mean((2, 3), keepdim=True)
    expect = torch.relu((weights * acts).sum(1, keepdim=True))
    expect = torch.nn.functional.interpolate(expect, size=(12, 12), mode="bilinear")[:, 0]
    np.testing.assert_allclose(cam, expect.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert cam.shape == (3, 12, 12)
    assert no_hooks(model)


def test_integrated_gradients_complete():
    model = random_model(SPEC, (8, 8, 1), dtype=torch.float64)
    images = random_images(2, (8, 8, 1))
    ig = explain(model, images, "integrated_gradients", steps=256, target=[0, 2])
    x = model.prepare(images).double()
    with torch.no_grad():
        diff = (model.net(x) - model.net(torch.zeros_like(x)))[[0, 1], [0, 2]].numpy()
    np.testing.assert_allclose(ig.reshape(2, -1).sum(1), diff, rtol=2e-3, atol=1e-4)


def test_occlusion_one_patch_is_the_probability_drop():
    model = random_model(SPEC, (8, 8, 1))
    image = random_images(1, (8, 8, 1))
    occ = explain(model, image, "occlusion", patch=8, stride=8, target=2)  # one patch: the whole image
    x = model.prepare(image)
    with torch.no_grad():
        drop = model.net(x).softmax(1)[0, 2] - model.net(torch.zeros_like(x)).softmax(1)[0, 2]
    np.testing.assert_allclose(occ[0], np.full((8, 8), drop.item()), rtol=1e-5, atol=1e-7)


def test_linear_weight_x_input_sums_to_the_logit_and_weight_map_matches_views():
    model = random_model("logreg", (6, 6, 3), n_classes=4)
    images = random_images(3, (6, 6, 3))
    wx = explain(model, images, "weight_x_input", target="c3")
    with torch.no_grad():
        logits = model.net(model.prepare(images))[:, 3] - model.net[1].bias[3]
    np.testing.assert_allclose(wx.reshape(3, -1).sum(1), logits.numpy(), rtol=1e-5, atol=1e-5)
    wm = explain(model, images[0], "weight_map", target=1)
    np.testing.assert_allclose(wm, st.explain.weight_maps(model)[1].sum(-1) / 60, rtol=1e-6)
    wm = explain(model, images[0], "weight_map", target=1, space="standardised")
    np.testing.assert_allclose(wm, st.explain.weight_maps(model)[1].sum(-1), rtol=1e-6)


def test_smoothgrad_is_saliency_without_noise_and_repeatable():
    model = random_model(SPEC, (8, 8, 1))
    images = random_images(2, (8, 8, 1))
    np.testing.assert_allclose(explain(model, images, "smoothgrad", noise=0.0, samples=3),
                               explain(model, images, "saliency"), rtol=1e-5, atol=1e-7)
    a = explain(model, images, "smoothgrad", samples=5, seed=3)
    np.testing.assert_array_equal(a, explain(model, images, "smoothgrad", samples=5, seed=3))
    assert not np.allclose(a, explain(model, images, "saliency"))


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "gradcam", "occlusion", "integrated_gradients"])
def test_internal_batching_does_not_change_the_maps(method):
    model = random_model(SPEC, (8, 8, 1))
    images = random_images(3, (8, 8, 1))
    whole = explain(model, images, method)
    tiny = explain(model, images, method, batch_size=2, max_elements=64)  # one image per pass, split copies
    np.testing.assert_allclose(tiny, whole, rtol=1e-4, atol=1e-6)


def test_targets_default_index_name_and_per_image():
    model = random_model(SPEC, (8, 8, 1))
    images = random_images(3, (8, 8, 1))
    pred = model.predict(images)
    default = explain(model, images, "saliency")
    np.testing.assert_allclose(default, explain(model, images, "saliency", target=list(pred)))
    np.testing.assert_allclose(explain(model, images, "saliency", target="c1"),
                               explain(model, images, "saliency", target=1))
    with pytest.raises(ModelError, match="unknown target class 'dog'; classes: c0, c1, c2"):
        explain(model, images, "saliency", target="dog")
    with pytest.raises(ModelError, match="out of range"):
        explain(model, images, "saliency", target=7)


def test_hooks_are_released_after_errors_and_by_the_context_manager():
    model = random_model(SPEC, (8, 8, 1))
    e = make_explainer(model, "gradcam", layer="relu1")
    with e:
        e.capture("conv1")
        assert not no_hooks(model)
    assert no_hooks(model)
    with pytest.raises(ModelError):
        e(random_images(2, (8, 8, 1)), target=[0])  # wrong number of targets
    assert no_hooks(model)


def test_gradcam_layer_choice_and_errors():
    model = random_model(SPEC, (8, 8, 1))
    images = random_images(2, (8, 8, 1))
    assert make_explainer(model, "gradcam").layer == "conv2"
    a = explain(model, images, "gradcam", layer="conv1")
    assert a.shape == (2, 8, 8) and not np.allclose(a, explain(model, images, "gradcam"))
    with pytest.raises(ModelError, match=r"no layer named 'conv9'; layers: conv1, relu1, maxpool1"):
        explain(model, images, "gradcam", layer="conv9")
    with pytest.raises(ModelError, match="layer 'linear1' has no spatial map"):
        explain(model, images, "gradcam", layer="linear1")
    with pytest.raises(ModelError, match="has none; try --method saliency"):
        explain(random_model("mlp", (8, 8, 1)), images, "gradcam")
    with pytest.raises(ModelError, match="expected one of saliency, smoothgrad, gradcam"):
        explain(model, images, "lime")
    with pytest.raises(DataError):
        explain(model, object(), "saliency")


def test_accepts_an_estimator_with_model_and_paths(tmp_path):
    from PIL import Image

    model = random_model(SPEC, (8, 8, 1))
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)

    class Fitted:
        model_ = model

    out = st.explain(Fitted(), str(path), method="saliency")
    np.testing.assert_allclose(out, explain(model, model.to_input(path), "saliency"))
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        st.explain(model, str(bad), method="saliency")


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("method", list(METHODS))
def test_every_model_every_method(name, method):
    model = random_model(name, (32, 32, 1), n_classes=3)
    images = random_images(2, (32, 32, 1))
    if method not in applicable_methods(model):
        with pytest.raises(ModelError, match="needs a"):
            explain(model, images, method)
        return
    opts = {"samples": 4} if method == "smoothgrad" else {"steps": 8} if method == "integrated_gradients" else {}
    maps = explain(model, images, method, **opts)
    assert maps.shape == (2, 32, 32) and maps.dtype == np.float32 and np.isfinite(maps).all()
    assert no_hooks(model)


def test_explain_a_fitted_image_classifier():
    from seethrough.data import load_splits

    train = load_splits("digits")["train"]
    clf = st.ImageClassifier(model="smallcnn", epochs=1, device="cpu").fit(train.images[:200], train.labels[:200])
    cam = st.explain(clf, train.images[0], method="gradcam")
    np.testing.assert_allclose(cam, explain(clf.model_, train.images[:1], "gradcam")[0])
    assert cam.shape == (8, 8)


def test_integrated_gradients_adapts_its_steps_to_one_percent():
    model = random_model(SPEC, (8, 8, 1), dtype=torch.float64)
    images = random_images(3, (8, 8, 1))
    with st.explain.make_explainer(model, "integrated_gradients") as e:
        ig = e(images, target=[0, 1, 2])
        diag = e.diagnostics
    x = model.prepare(images).double()
    with torch.no_grad():
        gap = (model.net(x) - model.net(torch.zeros_like(x)))[[0, 1, 2], [0, 1, 2]].numpy()
    for d, total, g in zip(diag, ig.reshape(3, -1).sum(1), gap):
        assert d["gap"] == pytest.approx(g) and d["delta"] == pytest.approx(total - g, abs=1e-6)
        assert d["relative_delta"] <= 0.01 or d["steps"] == 512
    with st.explain.make_explainer(model, "integrated_gradients", steps=4) as e:
        e(images)
        assert {d["steps"] for d in e.diagnostics} == {4}


def test_two_logit_model_explains_the_other_class_with_the_negated_map():
    # the logistic-regression lesson's model: logits [0, z]
    model = random_model("logreg", (6, 6, 1), n_classes=2)
    with torch.no_grad():
        model.net[1].weight[0] = 0
        model.net[1].bias[0] = 0
    image = random_images(1, (6, 6, 1))
    for method in ("weight_map", "weight_x_input", "integrated_gradients"):
        first, second = explain(model, image, method, target=0), explain(model, image, method, target=1)
        assert np.abs(second).max() > 0
        np.testing.assert_allclose(first, -second, rtol=1e-5, atol=1e-8)


def test_a_constant_map_is_named_in_a_warning():
    from seethrough.explain.base import ConstantMapWarning

    model = random_model(SPEC, (8, 8, 1))
    with torch.no_grad():
        for p in model.net.parameters():
            p.zero_()
    with pytest.warns(ConstantMapWarning, match="saliency: the map of image 0 is constant"):
        explain(model, random_images(1, (8, 8, 1)), "saliency")

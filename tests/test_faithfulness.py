"""Deletion / insertion curves and the model-randomization check against direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seethrough.explain import explain
from seethrough.explain.faithfulness import (curves, pixel_ranks, randomization_check, randomized,
                                             rank_correlation, score_methods)

from explain_helpers import random_images, random_model

SPEC = ["conv(out=4, k=3, pad=1)", "relu", "maxpool(k=2)", "flatten", "linear(out=3)"]


def probs(model, x, target):
    with torch.no_grad():
        return model.net(x).softmax(1)[torch.arange(len(x)), target].numpy()


def test_pixel_ranks_order_by_value_and_break_ties():
    maps = np.array([[[0.1, 0.9], [0.5, 0.5]]])
    r = pixel_ranks(maps, seed=0)[0]
    assert r[0, 1] == 0 and r[0, 0] == 3 and {r[1, 0], r[1, 1]} == {1, 2}
    ties = np.zeros((1, 8, 8))
    assert not np.array_equal(pixel_ranks(ties, 0), pixel_ranks(ties, 1))


def test_curves_against_masked_inputs():
    model = random_model(SPEC, (6, 6, 1))
    images = random_images(3, (6, 6, 1))
    maps = np.random.default_rng(0).random((3, 6, 6))
    c = curves(model, images, maps, steps=4)
    x = model.prepare(images)
    target = model.net(x).argmax(1)
    ranks = torch.as_tensor(pixel_ranks(maps))
    for k, frac in enumerate(c.fractions):
        top = (ranks < round(frac * 36))[:, None]  # (N, 1, H, W) the first pixels in the map's order
        np.testing.assert_allclose(c.deletion[:, k], probs(model, torch.where(top, 0.0, x), target), rtol=1e-5)
        np.testing.assert_allclose(c.insertion[:, k], probs(model, torch.where(top, x, 0.0), target), rtol=1e-5)
    np.testing.assert_allclose(c.deletion_auc, np.mean([np.trapezoid(d, c.fractions) for d in c.deletion]))


def test_exact_contributions_beat_a_random_order_on_a_linear_model():
    # two classes with opposite weights: removing the largest w*x first is the greedy optimum
    model = random_model("logreg", (6, 6, 1), n_classes=2)
    with torch.no_grad():
        model.net[1].weight[1] = -model.net[1].weight[0]
        model.net[1].bias.zero_()
    images = random_images(4, (6, 6, 1), seed=2)
    target = model.predict(images)
    maps = explain(model, images, "weight_x_input", target=target)
    ordered = curves(model, images, maps, target, steps=36)
    shuffled = curves(model, images, np.random.default_rng(0).random(maps.shape), target, steps=36)
    assert (ordered.deletion <= shuffled.deletion + 1e-6).all()
    assert (ordered.insertion >= shuffled.insertion - 1e-6).all()
    assert ordered.deletion_auc < shuffled.deletion_auc and ordered.insertion_auc > shuffled.insertion_auc


def test_randomization_check_is_one_for_identical_weights_and_lower_for_new_ones():
    model = random_model(SPEC, (8, 8, 1), seed=5)
    images = random_images(3, (8, 8, 1))
    same = randomized(model, seed=5)  # the helper seeds torch the same way: the same weights
    assert all(torch.equal(a, b) for a, b in zip(same.net.parameters(), model.net.parameters()))
    assert randomization_check(model, images, "saliency", seed=5) == pytest.approx(1.0)
    assert randomization_check(model, images, "saliency", seed=6) < 0.9
    assert model.net is not randomized(model, 6).net and rank_correlation(np.ones((1, 4)), np.ones((1, 4))) != 1


def test_score_rows_for_every_applicable_method():
    model = random_model(SPEC, (8, 8, 1))
    rows = score_methods(model, random_images(2, (8, 8, 1)), steps=4)
    assert [r["method"] for r in rows] == ["saliency", "smoothgrad", "gradcam", "occlusion", "integrated_gradients"]
    for r in rows:
        assert 0 <= r["deletion_auc"] <= 1 and 0 <= r["insertion_auc"] <= 1 and r["ms_per_image"] > 0
        assert -1 <= r["randomization_corr"] <= 1

"""Deletion / insertion curves and the model-randomization check against direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seethrough.explain import explain
from seethrough.explain.faithfulness import curves, pixel_ranks, score_methods
from seethrough.explain.randomization import THRESHOLD, randomization_check, randomized
from seethrough.explain.removal import REMOVALS

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


def test_removals_against_direct_computation():
    from scipy import ndimage

    model = random_model(SPEC, (16, 16, 1))
    images = random_images(2, (16, 16, 1))
    maps = np.random.default_rng(0).random((2, 16, 16))
    x = model.prepare(images)
    target = model.net(x).argmax(1)
    ranks = torch.as_tensor(pixel_ranks(maps))
    top = (ranks < round(0.5 * 256))[:, None]
    black = torch.full_like(x, -100 / 60)  # pixel 0 with mean 100, std 60
    blurred = torch.as_tensor(ndimage.gaussian_filter(x.numpy(), (0, 0, 1, 1), mode="reflect"))
    for removal, value in (("zero", black), ("blur", blurred)):
        c = curves(model, images, maps, steps=2, removal=removal)
        np.testing.assert_allclose(c.deletion[:, 1], probs(model, torch.where(top, value, x), target), rtol=1e-5)
        np.testing.assert_allclose(c.insertion[:, 1], probs(model, torch.where(top, x, value), target), rtol=1e-5)


def test_road_imputes_the_neighbours_mean_plus_noise():
    from seethrough.explain.removal import neighbour_weights, road_impute

    rng = np.random.default_rng(0)
    image = rng.random((2, 7, 7))
    removed = rng.random((7, 7)) < 0.4
    weights = neighbour_weights(7, 7).toarray()
    out = road_impute(image, removed, neighbour_weights(7, 7), np.zeros_like(image))
    np.testing.assert_array_equal(out[:, ~removed], image[:, ~removed])  # kept pixels stay
    for ch in range(2):  # each imputed pixel is the weighted mean of its neighbours (8 of them inside)
        flat = out[ch].ravel()
        np.testing.assert_allclose((weights @ flat)[removed.ravel()], flat[removed.ravel()], atol=1e-10)
    assert weights[8, [0, 1, 2, 7, 9, 14, 15, 16]].tolist() == [1 / 12, 1 / 6, 1 / 12, 1 / 6, 1 / 6, 1 / 12, 1 / 6,
                                                                 1 / 12]
    noisy = road_impute(image, removed, neighbour_weights(7, 7), np.ones_like(image))
    np.testing.assert_allclose(noisy[:, removed], out[:, removed] + 1)
    model = random_model(SPEC, (8, 8, 1))
    c = curves(model, random_images(2, (8, 8, 1)), np.random.default_rng(1).random((2, 8, 8)), steps=4,
               removal="road")
    assert c.deletion.shape == (2, 5) and np.isfinite(c.deletion).all()


def edge_case_masks(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, S, H, W) masks: nothing, everything, all but one pixel (corner, middle), the
    border only, all but the border, a random half, a random 95 %, one removed pixel."""
    rng = np.random.default_rng(seed)
    masks = [np.zeros((h, w), bool), np.ones((h, w), bool)]
    for i, j in ((0, 0), (h // 2, w // 2)):
        m = np.ones((h, w), bool)
        m[i, j] = False
        masks.append(m)
    border = np.zeros((h, w), bool)
    border[[0, -1]] = True
    border[:, [0, -1]] = True
    masks += [border, ~border, rng.random((h, w)) < 0.5, rng.random((h, w)) < 0.95]
    one = np.zeros((h, w), bool)
    one[h - 1, 1] = True
    masks.append(one)
    return torch.as_tensor(np.stack(masks))[None]


@pytest.mark.parametrize("shape", [(16, 16, 3), (9, 11, 2), (5, 3, 1)])
def test_road_conjugate_gradients_agree_with_the_sparse_direct_solve(shape):
    from seethrough.explain.removal import road_inputs, road_inputs_spsolve

    h, w, c = shape
    model = random_model(SPEC, shape)
    x = model.prepare(random_images(2, shape, seed=3)).double()             # (2, C, H, W)
    masks = torch.cat([edge_case_masks(h, w, 0), edge_case_masks(h, w, 1)])  # (2, S, H, W)
    ranks = torch.as_tensor(pixel_ranks(np.random.default_rng(4).random((2, h, w))))
    ranked = ranks[:, None] < torch.tensor([1, h * w // 3, h * w - 1]).view(1, -1, 1, 1)
    for removed in (masks, ranked, ~ranked):
        fast = road_inputs(model, x, removed, seed=7, tol=1e-10)
        exact = road_inputs_spsolve(model, x, removed, seed=7)
        np.testing.assert_allclose(fast.numpy(), exact.numpy(), rtol=0, atol=1e-8)
        kept = ~removed[:, :, None].expand_as(fast)
        assert torch.equal(fast[kept], x[:, None].expand_as(fast)[kept])  # kept pixels stay exactly
        default = road_inputs(model, x, removed, seed=7)                    # ROAD_TOL: one float32 round
        np.testing.assert_allclose(default.numpy(), exact.numpy(), rtol=0, atol=2e-4)


def test_road_noise_is_drawn_image_by_image_and_step_by_step():
    from seethrough.explain.removal import road_noise

    model = random_model(SPEC, (4, 5, 2))
    rng = np.random.default_rng(3)
    std = np.full((2, 1, 1), 60.0)
    expect = [[rng.standard_normal((2, 4, 5)) * 0.01 * 255 / std for _ in range(3)] for _ in range(2)]
    np.testing.assert_array_equal(road_noise(model, (2, 3, 2, 4, 5), seed=3), np.array(expect))


def test_spearman_and_ssim_against_scipy_and_identity():
    from scipy.stats import spearmanr

    from seethrough.explain.randomization import spearman_rows, ssim

    rng = np.random.default_rng(0)
    a, b = rng.random((3, 50)), rng.random((3, 50))
    b[0] = a[0] * 2 + 0.1 * b[0]
    expect = [spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman_rows(a, b), expect, rtol=1e-10)
    assert np.isnan(spearman_rows(np.ones((1, 5)), a[:1, :5])[0])
    m = rng.random((9, 9))
    assert ssim(m, m) == pytest.approx(1.0) and ssim(m, 1 - m) < 0.2


def test_randomization_leaves_global_state_and_model_alone():
    model = random_model(SPEC, (8, 8, 1), seed=5)
    before = [p.clone() for p in model.net.parameters()]
    images = random_images(3, (8, 8, 1))
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    same = randomized(model, [], seed=5)
    assert all(torch.equal(a, b) for a, b in zip(same.net.parameters(), model.net.parameters()))
    r = randomization_check(model, images, "saliency", seeds=(0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(before, model.net.parameters()))
    assert r.steps == ["linear1", "linear1 .. conv1"] and r.spearman_abs.shape == (2, 2, 3)
    assert r.verdict in ("passes", "fails") and (r.verdict == "passes") == (r.final < THRESHOLD)
    one = randomized(model, ["linear1"], seed=0)
    assert torch.equal(one.net.conv1.weight, model.net.conv1.weight)
    assert not torch.equal(one.net.linear1.weight, model.net.linear1.weight)
    again = randomized(model, ["linear1"], seed=0)
    assert torch.equal(one.net.linear1.weight, again.net.linear1.weight)
    ind = randomization_check(model, images, "saliency", mode="independent", seeds=(0,))
    assert ind.steps == ["conv1", "linear1"] and ind.verdict == "n/a"


def test_constant_maps_are_counted_not_averaged():
    model = random_model(SPEC, (8, 8, 1))
    images = random_images(2, (8, 8, 1))
    trained = np.zeros((2, 8, 8))  # as if the trained maps were blank
    trained[1] = np.random.default_rng(0).random((8, 8))
    r = randomization_check(model, images, "saliency", seeds=(0,), trained_maps=trained)
    assert r.constant_trained == 1 and np.isnan(r.spearman_abs[:, :, 0]).all()
    assert np.isfinite(r.spearman_abs[:, :, 1]).all()


def test_score_rows_for_every_applicable_method():
    model = random_model(SPEC, (8, 8, 1))
    rows = score_methods(model, random_images(2, (8, 8, 1)), steps=4, seeds=(0,))
    assert [r["method"] for r in rows] == ["saliency", "smoothgrad", "gradcam", "occlusion", "integrated_gradients"]
    for r in rows:
        assert list(r["removals"]) == list(REMOVALS) and r["ms_per_image"] > 0
        for v in r["removals"].values():
            assert 0 <= v["deletion"] <= 1 and 0 <= v["insertion"] <= 1 and v["deletion_std"] >= 0
        assert r["randomization"]["verdict"] in ("passes", "fails", "undecided")
    assert rows[-1]["ig"]["max_relative_delta"] <= 0.01 or max(rows[-1]["ig"]["steps"]) == 512


def test_shared_forward_equals_each_net_alone():
    from torch import nn

    from seethrough.explain.base import run_net, shared_forward

    model = random_model(SPEC, (8, 8, 1))
    copies = [randomized(model, plan, seed) for seed in (0, 1) for plan in (["linear1"], ["conv1", "linear1"])]
    inplace = nn.Sequential(nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(64, 3))
    other = nn.Sequential(nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(64, 3))
    nets = [model.net] + [c.net for c in copies] + [inplace, other]
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        for net, out in zip(nets, shared_forward(nets, x.clone())):
            torch.testing.assert_close(out, run_net(net, x.clone()))
    assert copies[0].net.conv1 is model.net.conv1 and copies[0].net.linear1 is not model.net.linear1


def test_occlusion_of_several_nets_at_once_equals_one_by_one():
    from seethrough.explain.occlusion import Occlusion

    model = random_model(SPEC, (8, 8, 1), seed=2)
    images = random_images(3, (8, 8, 1), seed=1)
    target = model.predict(images)
    copies = [randomized(model, plan, 4) for plan in ([], ["linear1"], ["conv1", "linear1"])]
    with Occlusion(model, patch=3, stride=2, batch_size=2, max_elements=200) as e:
        together = e.maps_of_nets([c.net for c in copies], images, target)
    for c, maps in zip(copies, together):
        np.testing.assert_allclose(maps, explain(c, images, "occlusion", target=target, patch=3, stride=2),
                                   rtol=1e-5, atol=1e-7)


def test_randomization_check_against_copies_explained_one_by_one():
    import copy

    from seethrough.explain.randomization import spearman_rows

    model = random_model(SPEC, (8, 8, 1), seed=3)
    images = random_images(3, (8, 8, 1), seed=2)
    target = model.predict(images)
    r = randomization_check(model, images, "occlusion", seeds=(0, 1), target=target)
    trained = explain(model, images, "occlusion", target=target)
    for si, seed in enumerate((0, 1)):
        for pi, plan in enumerate((["linear1"], ["conv1", "linear1"])):
            deep = copy.copy(model)
            deep.net = copy.deepcopy(model.net)  # the whole network copied, as before layers were shared
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                for name in plan:
                    deep.net.get_submodule(name).reset_parameters()
            maps = explain(deep, images, "occlusion", target=target)
            expect = spearman_rows(np.abs(trained.reshape(3, -1)), np.abs(maps.reshape(3, -1)))
            np.testing.assert_allclose(r.spearman_abs[si, pi], expect, rtol=1e-6)


def test_integrated_gradients_copies_use_each_images_own_steps():
    from seethrough.explain.randomization import method_maps
    from seethrough.explain.registry import get_method

    model = random_model(SPEC, (8, 8, 1))
    images = random_images(3, (8, 8, 1))
    target = model.predict(images)
    maps = method_maps(get_method("integrated_gradients"), [model], images, target, {"steps": [4, 16, 4]})[0]
    for i, steps in enumerate((4, 16, 4)):
        np.testing.assert_allclose(maps[i], explain(model, images[i:i + 1], "integrated_gradients",
                                                    target=target[i:i + 1], steps=steps)[0], rtol=1e-6)

"""The fused CPU plan behind TrainedModel.logits: same logits as the eager net, rebuilt when weights change."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seethrough import fused
from seethrough.data import ImageDataset
from seethrough.train import TrainConfig, fit, new_model
from seethrough.trained import Preprocess

pytestmark = pytest.mark.skipif(not fused.available(), reason="this PyTorch has no oneDNN fused convolution")


def _data(n=24, side=32, channels=3, seed=0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, side, side, channels), dtype=np.uint8)
    return ImageDataset(images, np.arange(n) % 4, list("abcd"))


def _eager(model, images) -> np.ndarray:
    """The oracle: the eager net on the standardised images."""
    model.net.eval()
    with torch.no_grad():
        return model.net(model.prepare(images)).numpy()


def _randomise_batchnorm(model, seed: int, positive: bool) -> None:
    """Running statistics and affine weights away from their initial values, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
                low = 0.2 if positive else -1.0          # negative scales cannot move before a max pool
                m.weight.copy_(low + torch.rand(c, generator=g) * (1.5 - low))
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)


def _assert_fused_matches(model, images):
    got = model.logits(images)
    assert model._fused.plans.get(torch.float32) is not None, "the fused plan was not used"
    np.testing.assert_allclose(got, _eager(model, images), rtol=1e-5, atol=1e-5)
    return got


@pytest.mark.parametrize("name", ["seed-cnn", "smallcnn", "fastcifar-s", "lenet5", "tinyvgg", "mlp", "logreg"])
def test_fused_logits_equal_eager_logits(name):
    data = _data()
    model = new_model(name, data, seed=3)
    _assert_fused_matches(model, data.images)


@pytest.mark.parametrize("positive", [True, False])
def test_batch_norm_in_eval_mode_is_folded_exactly(positive):
    data = _data()
    model = new_model("fastcifar-s", data, seed=4)
    _randomise_batchnorm(model, seed=5, positive=positive)
    _assert_fused_matches(model, data.images)


def test_tiny_batches_and_single_images():
    data = _data(n=5)
    model = new_model("seed-cnn", data, seed=1)
    full = _assert_fused_matches(model, data.images)
    for n in (1, 2, 3):
        np.testing.assert_allclose(model.logits(data.images[:n]), full[:n], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.logits(data.images, batch_size=2), full, rtol=1e-5, atol=1e-5)
    assert model.predict(data.images[:1]).shape == (1,)
    assert model.logits(data.images[:0]).shape == (0, 4)


@pytest.mark.parametrize("name", ["seed-cnn", "lenet5", "fastmnist"])
def test_one_channel_images(name):
    data = _data(n=9, side=28, channels=1)
    model = new_model(name, data, seed=2)
    _assert_fused_matches(model, data.images)
    proba = model.predict_proba(data.images[:1])
    assert proba.shape == (1, 4) and abs(proba.sum() - 1) < 1e-5


def test_plan_is_rebuilt_after_a_fit():
    data = _data(n=32, side=16)
    model = new_model("fastcifar-s", data, seed=0)            # batch norm statistics move too
    before = _assert_fused_matches(model, data.images)
    plan = model._fused.plans.get(torch.float32)
    fit(model, data, TrainConfig(epochs=1, batch_size=16, device="cpu", val_fraction=0))
    after = _assert_fused_matches(model, data.images)
    assert model._fused.plans.get(torch.float32) is not plan
    assert np.abs(after - before).max() > 1e-3


def test_plan_is_rebuilt_after_in_place_edits_and_new_preprocessing():
    data = _data()
    model = new_model("seed-cnn", data, seed=0)
    before = _assert_fused_matches(model, data.images)
    with torch.no_grad():
        model.net[0].weight.mul_(-2)                       # in place: the version counter moves
    edited = _assert_fused_matches(model, data.images)
    assert np.abs(edited - before).max() > 1e-3
    model.net.load_state_dict(new_model("seed-cnn", data, seed=9).net.state_dict())
    loaded = _assert_fused_matches(model, data.images)
    assert np.abs(loaded - edited).max() > 1e-3
    model.preprocess = Preprocess.unit(3)
    unit = _assert_fused_matches(model, data.images)
    assert np.abs(unit - loaded).max() > 1e-3
    plan = model._fused.plans.get(torch.float32)
    model.logits(data.images)
    assert model._fused.plans.get(torch.float32) is plan                       # nothing changed: the plan is kept


def test_forward_hooks_get_the_eager_net():
    data = _data(n=4)
    model = new_model("seed-cnn", data, seed=0)
    seen = []
    handle = model.net[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    np.testing.assert_allclose(model.logits(data.images), _eager(model, data.images), rtol=1e-6, atol=1e-6)
    assert seen and seen[0][0] == 4
    handle.remove()
    _assert_fused_matches(model, data.images)


@pytest.mark.parametrize("side", [8, 9])
def test_pool2_equals_max_pool2d(side):
    x = torch.randn(3, 5, side, side).contiguous(memory_format=torch.channels_last)
    assert torch.equal(fused.pool2(x), F.max_pool2d(x, 2))


def test_big_batches_are_split_between_single_threaded_workers():
    data = _data(n=2 * fused.CHUNK + 5)                      # two full chunks and a short one
    model = new_model("seed-cnn", data, seed=6)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = _assert_fused_matches(model, data.images)
        np.testing.assert_allclose(got[:7], model.logits(data.images[:7]), rtol=1e-5, atol=1e-5)
        if fused._openmp():
            (threads, _), pool = fused._Workers._pool
            assert threads == 2
            assert pool.submit(torch.get_num_threads).result() == 1
        assert torch.get_num_threads() == 2                  # the caller's count is left alone
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [2]                                  # and so is the one new threads start with
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["seed-cnn", "fastcifar-s", "mlp"])
def test_bf16_plan_is_close_to_the_float32_logits(name):
    data = _data(n=64)
    model = new_model(name, data, seed=2)
    _randomise_batchnorm(model, seed=2, positive=True)
    ref = _eager(model, data.images)
    plan = fused.build(model.net.eval(), model.preprocess, model.in_chw, torch.bfloat16)
    assert plan is not None and plan.dtype == torch.bfloat16
    got = model.logits(data.images, precision="bf16")
    assert got.dtype == np.float32
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= 0.05 * scale       # bf16 keeps 8 bits of mantissa
    assert np.abs(got - ref).max() > 0                    # and it is not the float32 plan
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9
    np.testing.assert_allclose(model.logits(data.images), ref, rtol=1e-4, atol=1e-4 * scale)  # fp32 plan unchanged


def test_bf16_precision_falls_back_to_eager_autocast_under_hooks():
    data = _data(n=8)
    model = new_model("seed-cnn", data, seed=1)
    ref = _eager(model, data.images)
    handle = model.net[0].register_forward_hook(lambda *_: None)
    try:
        got = model.logits(data.images, precision="bf16")
    finally:
        handle.remove()
    assert np.abs(got - ref).max() <= 0.05 * np.abs(ref).max() and np.abs(got - ref).max() > 0

"""Training recipes: option merging, the whitening first layer, test-time flips, the --recipe option."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from conftest import write_image_folder
from seethrough import recipes
from seethrough.cli import cli
from seethrough.errors import SeethroughError
from seethrough.config import TrainConfig
from seethrough.models.surgery import whiten_first_conv
from seethrough.recipes import Recipe, get_recipe, prepare_model
from seethrough.trained import predict_tta
from seethrough.train import new_model


def test_get_recipe_and_unknown_names():
    assert get_recipe("cifar10", "fast").model == "fastcifar"
    assert get_recipe("/some/where/cifar10-jpeg", "keras").config.batch_size == 64
    with pytest.raises(SeethroughError, match="--recipe 'slow'.*cifar10 --recipe fast"):
        get_recipe("cifar10", "slow")
    with pytest.raises(SeethroughError, match="for 'digits'"):
        get_recipe("digits", "fast")


def test_given_options_win_over_the_recipe():
    r = get_recipe("mnist", "fast")
    merged = r.merge(TrainConfig(epochs=9, lr=0.5, seed=3), given={"epochs", "seed"})
    assert merged.epochs == 9 and merged.seed == 3
    assert merged.lr == r.config.lr and r.model == "fastmnist"


@pytest.mark.parametrize("channels", [1, 3])
def test_whitening_makes_the_patch_covariance_the_identity(channels):
    from seethrough.data import ImageDataset

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(60, 12, 12, channels)).astype(np.float64)
    smooth = (base + np.roll(base, 1, 1) + np.roll(base, 1, 2)) / 3  # correlated neighbours
    data = ImageDataset(smooth.astype(np.uint8), np.arange(60) % 3, ["a", "b", "c"])
    model = new_model("fastmnist", data)
    whiten_first_conv(model, data.images, eps=0.0)
    conv = model.net[0]
    assert not conv.weight.requires_grad and conv.bias.requires_grad
    with torch.no_grad():
        out = conv(model.prepare(data.images)).double()                # (N, 2d, H-1, W-1)
    d = 4 * channels
    feats = out[:, :d].permute(0, 2, 3, 1).reshape(-1, d)              # the positive half
    np.testing.assert_allclose(feats.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(torch.cov(feats.T).numpy(), np.eye(d), atol=1e-3)
    np.testing.assert_allclose(out[:, d:].numpy(), -out[:, :d].numpy(), atol=1e-5)


def test_predict_tta_averages_the_image_and_its_mirror(tiny_images):
    model = new_model("tinyvgg", tiny_images)
    x = tiny_images.images[:10]
    p = F.softmax(torch.from_numpy(model.logits(x)), 1) + F.softmax(torch.from_numpy(model.logits(x[:, :, ::-1])), 1)
    np.testing.assert_allclose(predict_tta(model, x, batch_size=4), p.numpy() / 2, atol=1e-6)


def test_predict_tta_with_shifts_averages_six_views(tiny_images):
    model = new_model("tinyvgg", tiny_images)
    x = tiny_images.images[:6]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = x.shape[1:3]
    views = [x, padded[:, :h, :w], padded[:, 2:, 2:]]
    p = sum(F.softmax(torch.from_numpy(model.logits(np.ascontiguousarray(v[:, :, ::-1] if f else v))), 1)
            for v in views for f in (0, 1))
    np.testing.assert_allclose(predict_tta(model, x, batch_size=4, views="flip+shift"), p.numpy() / 6, atol=1e-6)
    p3 = sum(F.softmax(torch.from_numpy(model.logits(np.ascontiguousarray(v))), 1) for v in views)
    np.testing.assert_allclose(predict_tta(model, x, views="shift"), p3.numpy() / 3, atol=1e-6)
    with pytest.raises(SeethroughError, match="views must be one of"):
        predict_tta(model, x, views="rotate")


def test_frozen_parameters_stay_frozen_after_save_and_load(tiny_images, tmp_path):
    from seethrough.trained import TrainedModel

    recipe = Recipe("r", ("tiny",), "", {"model_name": "fastmnist"}, whiten=True)
    model = new_model("fastmnist", tiny_images)
    prepare_model(recipe, model, tiny_images.images)
    frozen = {n for n, p in model.net.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1.weight"}
    model.save(tmp_path)
    again = TrainedModel.load(tmp_path)
    assert {n for n, p in again.net.named_parameters() if not p.requires_grad} == frozen


def test_cli_recipe_sets_unset_options(tmp_path, monkeypatch):
    folder = write_image_folder(tmp_path / "tinyset", n_per_class=10, size=(12, 12), mode="L")
    recipe = Recipe("quick", ("tinyset",), "test recipe", "fastmnist",
                    TrainConfig(epochs=5, batch_size=8, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                                schedule="onecycle", augment="shift", label_smoothing=0.1, val_fraction=0.0),
                    normalize="standard", whiten=True, tta="flip")
    monkeypatch.setattr(recipes, "RECIPES", recipes.RECIPES + [recipe])
    res = CliRunner().invoke(cli, ["train", str(folder), "--recipe", "quick", "--epochs", "2",
                                   "--out", str(tmp_path / "runs"), "--name", "r", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "test accuracy averaged over copies (flip, --recipe quick):" in res.output
    info = json.loads((tmp_path / "runs" / "r" / "model.json").read_text())
    assert info["model"] == "fastmnist" and info["recipe"] == "quick"
    assert info["train"]["epochs"] == 2                     # given on the command line
    assert info["train"]["optimizer"] == "sgd" and info["train"]["batch_size"] == 8  # from the recipe
    lines = (tmp_path / "runs" / "r" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_airbench_init_identity_convs_fixed_scales_small_head(tiny_images):
    model = new_model("fastmnist", tiny_images, seed=2)
    head_before = model.net.linear1.weight.clone()
    recipe = Recipe("r", ("tiny",), "", "fastmnist", whiten=True, airbench_init=True)
    prepare_model(recipe, model, tiny_images.images)
    conv = model.net.conv3                                              # 16 -> 16 channels, 3x3, pad 1
    x = torch.randn(2, conv.in_channels, 5, 5)
    torch.testing.assert_close(F.conv2d(x, conv.weight, padding=1)[:, :conv.in_channels], x)
    frozen = {n for n, p in model.net.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1.weight"} | {f"batchnorm{i}.weight" for i in range(1, 7)}
    assert all(float(model.net.get_submodule(f"batchnorm{i}").weight.min()) == 1.0 for i in range(1, 7))
    torch.testing.assert_close(model.net.linear1.weight, head_before / 9)


def test_every_cifar_recipe_builds_a_config():
    for data, name, _ in recipes.list_recipes():
        get_recipe(data, name).config.check()

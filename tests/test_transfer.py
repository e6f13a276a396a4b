"""Starting from another run: which weights are copied, how the input is matched, what trains,
and the one-line errors for sources that cannot serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seethrough.data import ImageDataset
from seethrough.errors import SeethroughError
from seethrough.trained import Preprocess, TrainedModel
from seethrough.train import TrainConfig, fit
from seethrough.train.loop import param_groups
from seethrough.transfer import features_model, match_input, parse_features, transfer


def _source(tmp_path, spec, shape=(12, 12, 3), classes=("a", "b", "c"), name="src") -> str:
    torch.manual_seed(0)
    model = TrainedModel(spec, shape, classes, Preprocess([10.0] * shape[2], [50.0] * shape[2]),
                         meta={"model": "custom", "frozen": []})
    return str(model.save(tmp_path / name))


GAP_NET = ["conv(out=4, k=3)", "batchnorm", "relu", "maxpool(k=2)", "conv(out=6, k=3)", "relu", "gap",
           "linear(out=3)"]
FLAT_NET = ["conv(out=4, k=3)", "relu", "maxpool(k=2)", "flatten", "linear(out=8)", "relu", "linear(out=3)"]


def _gray(n=40, side=20, classes=2):
    rng = np.random.default_rng(0)
    return ImageDataset(rng.integers(0, 255, (n, side, side, 1), dtype=np.uint8), np.arange(n) % classes,
                        [f"k{i}" for i in range(classes)], "gray")


def test_transfer_copies_the_body_and_replaces_the_head(tmp_path):
    src_dir = _source(tmp_path, GAP_NET)
    src = TrainedModel.load(src_dir)
    data = _gray()
    model = transfer(src_dir, data, seed=1)
    # gray -> RGB by repetition; a gap body keeps the images' own size
    assert model.input_shape == (20, 20, 3) and model.class_names == ["k0", "k1"]
    assert model.preprocess.mean == src.preprocess.mean
    new, old = model.net.state_dict(), src.net.state_dict()
    for k in old:
        if not k.startswith("linear1"):
            assert torch.equal(new[k], old[k]), k
    assert new["linear1.weight"].shape == (2, 6)
    info = model.meta["init_from"]
    assert info["source"].endswith("src") and len(info["sha256"]) == 64 and info["layers"][-1] == "gap1"
    matched = match_input(data, model.input_shape)
    assert matched.images.shape == (40, 20, 20, 3)
    np.testing.assert_array_equal(matched.images[..., 2], data.images[..., 0])
    assert model.predict_proba(matched.images).shape == (40, 2)


def test_a_flattening_source_takes_its_own_input_size(tmp_path):
    model = transfer(_source(tmp_path, FLAT_NET), _gray(side=30))
    assert model.input_shape == (12, 12, 3)
    assert match_input(_gray(side=30), model.input_shape).images.shape == (40, 12, 12, 3)
    rgb = ImageDataset(np.full((2, 5, 5, 3), [255, 0, 0], np.uint8), [0, 1], ["a", "b"])
    assert match_input(rgb, (5, 5, 1)).images[0, 0, 0, 0] == round(0.299 * 255)  # luminance


def test_freeze_trains_only_the_head(tmp_path):
    src_dir = _source(tmp_path, GAP_NET)
    data = _gray(classes=2)
    model = transfer(src_dir, data, freeze=True)
    assert "conv1.weight" in model.meta["frozen"] and "linear1.weight" not in model.meta["frozen"]
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    fit(model, match_input(data, model.input_shape), TrainConfig(epochs=2, lr=0.05, device="cpu", val_fraction=0))
    after = model.net.state_dict()
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert torch.equal(after["conv2.bias"], before["conv2.bias"])
    assert not torch.equal(after["linear1.weight"], before["linear1.weight"])


def test_warm_head_trains_only_the_new_layer_then_leaves_all_trainable(tmp_path):
    from seethrough.transfer import warm_head

    model = transfer(_source(tmp_path, GAP_NET), _gray(classes=2))
    data = match_input(_gray(classes=2), model.input_shape)
    trainable = {k: p.requires_grad for k, p in model.net.named_parameters()}
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    history = warm_head(model, data, TrainConfig(epochs=9, lr=0.005, device="cpu", val_fraction=0, head_epochs=2))
    after = model.net.state_dict()
    assert len(history) == 2                                        # its own epochs, not config.epochs
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert not torch.equal(after["linear1.weight"], before["linear1.weight"])
    assert {k: p.requires_grad for k, p in model.net.named_parameters()} == trainable


def test_a_from_run_warms_its_head_unless_frozen_or_told(tmp_path):
    from seethrough.pipeline import RunOptions, train_run

    src = _source(tmp_path, GAP_NET)
    splits = {"train": _gray(classes=2)}
    notes = []
    cfg = TrainConfig(epochs=1, device="cpu", val_fraction=0)
    r = train_run(splits, "logreg", cfg, RunOptions(init_from=src, log=notes.append))
    assert r.model.meta["train"]["head_epochs"] == 5 and any("new last layer alone for 5" in n for n in notes)
    assert r.history[-1]["lr"] == pytest.approx(cfg.lr)     # the given rate, not the body's tenth of it
    r = train_run(splits, "logreg", cfg, RunOptions(init_from=src, freeze=True))
    assert not r.model.meta["train"]["head_epochs"]
    r = train_run(splits, "logreg", TrainConfig(epochs=1, device="cpu", val_fraction=0, head_epochs=0),
                  RunOptions(init_from=src))
    assert r.model.meta["train"]["head_epochs"] == 0
    with pytest.raises(SeethroughError, match="head_epochs"):
        TrainConfig(head_epochs=-1).check()
    for options in (RunOptions(), RunOptions(init_from=src, freeze=True)):   # nothing to warm up
        with pytest.raises(SeethroughError, match="expected --from SOURCE without --freeze"):
            train_run(splits, "logreg", TrainConfig(epochs=1, device="cpu", head_epochs=2), options)


def test_body_lr_scale_slows_every_layer_but_the_head(tmp_path):
    model = transfer(_source(tmp_path, GAP_NET), _gray())
    groups = param_groups(model.net, TrainConfig(body_lr_scale=0.1))
    head = {id(p) for p in model.net.linear1.parameters()}
    for g in groups:
        is_head = all(id(p) in head for p in g["params"])
        assert g["lr_scale"] == (1.0 if is_head else pytest.approx(0.1))
    assert len(param_groups(model.net, TrainConfig())) == 1  # None: no scaling outside --from
    with pytest.raises(SeethroughError, match="body_lr_scale"):
        TrainConfig(body_lr_scale=0).check()


def test_features_model_cuts_at_a_layer(tmp_path):
    src_dir = _source(tmp_path, GAP_NET)
    data = _gray()
    model = features_model(src_dir, data, "maxpool1")
    assert [l.name for l in model.spec] == ["conv1", "batchnorm1", "relu1", "maxpool1", "flatten_features",
                                           "linear_features"]
    assert model.meta["model"] == "logreg" and model.meta["init_from"]["features"] == "maxpool1"
    assert set(model.meta["frozen"]) == {"conv1.weight", "conv1.bias", "batchnorm1.weight", "batchnorm1.bias"}
    assert model.input_shape == (12, 12, 3)  # no gap before the cut: the source's size
    assert model.net.linear_features.in_features == 4 * 5 * 5
    assert parse_features("runs/x:relu2") == ("runs/x", "relu2") and parse_features("cifar10") == ("cifar10", None)


def test_bad_sources_give_one_line_errors(tmp_path):
    data = _gray()
    with pytest.raises(SeethroughError, match=r"no layer 'conv9'; its layers are conv1, batchnorm1, relu1"):
        features_model(_source(tmp_path, GAP_NET), data, "conv9")
    lin = _source(tmp_path, ["flatten", "linear(out=3)"], name="lin")
    with pytest.raises(SeethroughError, match="without convolutions"):
        transfer(lin, data)
    with pytest.raises(SeethroughError, match="--freeze: .* no trained layers before its classifier"):
        transfer(lin, data, freeze=True)
    with pytest.raises(SeethroughError, match="do not fit 4x4x3 input"):
        transfer(_source(tmp_path, GAP_NET, name="gap"), _gray(side=4))
    with pytest.raises(SeethroughError, match="not a run folder"):
        transfer(tmp_path / "missing", data)
    for exc in (SeethroughError,):
        try:
            transfer(lin, data)
        except exc as e:
            assert "\n" not in str(e)


def test_image_classifier_init_from(tmp_path):
    from seethrough import ImageClassifier

    src_dir = _source(tmp_path, GAP_NET)
    data = _gray(n=30, classes=3)
    clf = ImageClassifier(init_from=src_dir, freeze=True, epochs=2, lr=0.05, val_fraction=0.2)
    clf.fit(data.images, data.labels)
    assert clf.model_.input_shape == (20, 20, 3) and clf.model_.meta["init_from"]["freeze"]
    assert clf.model_.temperature > 0 and "unfamiliar" in clf.model_.meta
    assert clf.predict_proba(data.images).shape == (30, 3)      # gray input matched to the RGB body
    assert torch.equal(clf.model_.net.conv1.weight, TrainedModel.load(src_dir).net.conv1.weight)

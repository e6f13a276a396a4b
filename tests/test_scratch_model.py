"""One spec, two engines: the NumPy Net against the PyTorch module built from the same spec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seethrough.cli import main
from seethrough.errors import ModelError, SeethroughError
from seethrough.models import LAYER_KINDS, build_torch, create_spec, list_models
from seethrough.scratch import Net, SoftmaxCrossEntropy, bridge
from seethrough.scratch.fit import fit_numpy
from seethrough.scratch.optim import SGD, Adam
from seethrough.train import TrainConfig, new_model
from seethrough.trained import TrainedModel

from conftest import write_image_folder


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """These arrays are small; one BLAS thread avoids OpenBLAS's slowdown when the cores are shared."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    with threadpool_limits(1, user_api="blas"):
        yield


def images(n, h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("hwc", [(32, 32, 3), (28, 28, 1)])
def test_torch_weights_give_the_same_logits_in_numpy(name, hwc, tiny_images):
    from seethrough.data import ImageDataset

    h, w, c = hwc
    data = ImageDataset(images(20, h, w, c), np.arange(20) % 10, [str(i) for i in range(10)], "random")
    torch.manual_seed(1)
    model = new_model(name, data, seed=1)
    x = images(6, h, w, c, seed=2)
    zt = model.logits(x)
    zn = bridge.logits(model, x)
    assert zn.dtype == np.float32
    assert np.abs(zt - zn).max() < 1e-4
    assert np.array_equal(zt.argmax(1), zn.argmax(1))


@pytest.mark.parametrize("name", list_models())
def test_numpy_weights_give_the_same_logits_in_torch(name, tmp_path):
    """The other way round: weights drawn by the NumPy engine, saved to a run folder, read by PyTorch."""
    from seethrough.data import ImageDataset

    data = ImageDataset(images(20, 32, 32, 3), np.arange(20) % 10, [str(i) for i in range(10)], "random")
    model = new_model(name, data, seed=0)
    net = Net(model.spec, model.in_chw, seed=7)  # NumPy's own initial weights, not torch's
    bridge.copy_to_torch(net, model).save(tmp_path / "run")
    loaded = TrainedModel.load(tmp_path / "run")
    x = images(5, 32, 32, 3, seed=3)
    zn, zt = bridge.logits(model, x, net), loaded.logits(x)
    assert np.abs(zt - zn).max() < 1e-4
    assert np.array_equal(zt.argmax(1), zn.argmax(1))


BN_SPEC = ["conv(out=4, k=3, pad=1)", "batchnorm", "relu", "maxpool(k=2)", "conv(out=6, k=3, stride=2)",
           "relu", "gap", "dropout(p=0.2)", "linear(out=5)", "batchnorm", "relu", "linear(out=3)"]


def test_batchnorm_spec_trained_in_torch_matches_in_numpy(tmp_path, tiny_images):
    model = new_model(BN_SPEC, tiny_images, seed=0)
    net = model.net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = model.prepare(tiny_images.images), torch.from_numpy(tiny_images.labels)
    for _ in range(3):  # move the running statistics and weights away from their initial values
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    model.save(tmp_path / "run")
    loaded = TrainedModel.load(tmp_path / "run")
    zt, zn = loaded.logits(tiny_images.images), bridge.logits(loaded, tiny_images.images)
    assert np.abs(zt - zn).max() < 1e-4


@pytest.mark.parametrize("spec", ["seed-cnn", BN_SPEC])
def test_whole_network_gradients_match_autograd(spec):
    """One training-mode forward and backward of a whole network, float64, every parameter."""
    in_shape = (3, 16, 16) if spec == BN_SPEC else (3, 32, 32)
    layers = create_spec(spec, in_shape, 3)  # BN_SPEC ends in 3 scores; the labels below are 0..2
    tnet = build_torch(layers, in_shape).double()
    tnet.eval() if spec == BN_SPEC else tnet.train()  # dropout off so the two draws agree
    net = Net(layers, in_shape, dtype=np.float64)
    net.load_state_dict(tnet.state_dict())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5,) + in_shape), rng.integers(0, 3, 5)
    loss_fn = SoftmaxCrossEntropy()
    train = spec != BN_SPEC
    loss = loss_fn.forward(net.forward(x, train=train), y)
    net.backward(loss_fn.backward())
    lt = F.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y))
    lt.backward()
    assert abs(loss - lt.item()) < 1e-10
    grads = net.gradients()
    for key, p in tnet.named_parameters():
        assert np.abs(grads[key] - p.grad.numpy()).max() < 1e-10 * max(1, np.abs(p.grad.numpy()).max()), key


def test_batchnorm_training_gradients_match_autograd():
    layers = create_spec(["conv(out=3, k=3)", "batchnorm", "relu", "flatten", "linear(out=4)", "batchnorm",
                          "linear(out=2)"], (2, 6, 6), 2)
    tnet = build_torch(layers, (2, 6, 6)).double().train()
    net = Net(layers, (2, 6, 6), dtype=np.float64)
    net.load_state_dict(tnet.state_dict())
    x = np.random.default_rng(3).standard_normal((7, 2, 6, 6))
    y = np.arange(7) % 2
    fn = SoftmaxCrossEntropy()
    fn.forward(net.forward(x, train=True), y)
    net.backward(fn.backward())
    F.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    for key, p in tnet.named_parameters():
        assert np.allclose(net.gradients()[key], p.grad.numpy(), rtol=1e-8, atol=1e-12), key
    for key, v in tnet.state_dict().items():  # running statistics and the batch counter
        assert np.allclose(net.state_dict()[key], v.numpy()), key


@pytest.mark.parametrize("kind,options", [("sgd", dict(momentum=0.9, weight_decay=0.01, nesterov=True)),
                                          ("sgd", dict(momentum=0.0)),
                                          ("adam", dict(weight_decay=0.01)),
                                          ("adamw", dict(weight_decay=0.1))])
def test_optimizers_follow_pytorch(kind, options):
    layers = create_spec("mlp", (1, 4, 4), 3)
    tnet = build_torch(layers, (1, 4, 4)).double()
    net = Net(layers, (1, 4, 4), dtype=np.float64)
    net.load_state_dict(tnet.state_dict())
    if kind == "sgd":
        ours, theirs = SGD(net, 0.1, **options), torch.optim.SGD(tnet.parameters(), lr=0.1, **options)
    else:
        ours = Adam(net, 0.01, weight_decay=options["weight_decay"], decoupled=kind == "adamw")
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        theirs = cls(tnet.parameters(), lr=0.01, **options)
    rng = np.random.default_rng(0)
    fn = SoftmaxCrossEntropy()
    for step in range(4):
        x, y = rng.standard_normal((8, 1, 4, 4)), rng.integers(0, 3, 8)
        fn.forward(net.forward(x, train=True), y)
        net.backward(fn.backward())
        ours.step()
        theirs.zero_grad()
        F.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs.step()
    for key, v in tnet.state_dict().items():
        assert np.allclose(net.state_dict()[key], v.numpy(), rtol=1e-9, atol=1e-12), key


@pytest.mark.parametrize("name", ["logreg", "mlp", "lenet5", "seed-cnn"])
@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.05), ("adam", 0.003)])
def test_numpy_training_writes_a_run_torch_reads(name, optimizer, lr, tmp_path, tiny_images):
    from seethrough.data import ImageDataset
    from seethrough.train.loop import read_metrics

    if name == "seed-cnn":  # needs at least 22x22 input: grow the tiny data set
        big = np.repeat(np.repeat(tiny_images.images, 2, 1), 2, 2)
        tiny_images = ImageDataset(big, tiny_images.labels, tiny_images.class_names, "tiny24")
    model = new_model(name, tiny_images, seed=0)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=lr, optimizer=optimizer, val_fraction=0.2)
    history = fit_numpy(model, tiny_images, cfg, run_dir=tmp_path / "run")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.6  # 3 classes: chance is 1/3
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3, 4]
    loaded = TrainedModel.load(tmp_path / "run")
    assert loaded.meta["train"]["engine"] == "numpy"
    zt, zn = loaded.logits(tiny_images.images), bridge.logits(loaded, tiny_images.images)
    np.testing.assert_allclose(zt, zn, rtol=1e-5, atol=1e-4)  # logits near 100: float32 sums in another order
    assert np.array_equal(zt.argmax(1), zn.argmax(1))


def test_engine_refuses_a_layer_it_lacks(monkeypatch):
    monkeypatch.setitem(LAYER_KINDS, "attention", {})
    with pytest.raises(ModelError, match="NumPy engine has no 'attention' layer"):
        Net(["flatten", "attention", "linear(out=2)"], (1, 4, 4))


def test_load_state_dict_names_the_mismatch():
    net = Net(create_spec("logreg", (1, 4, 4), 2), (1, 4, 4))
    with pytest.raises(ModelError, match="missing.*linear1.bias"):
        net.load_state_dict({"linear1.weight": np.zeros((2, 16))})
    with pytest.raises(ModelError, match="linear1.weight: weights of shape"):
        net.load_state_dict({"linear1.weight": np.zeros((3, 16)), "linear1.bias": np.zeros(2)})


def test_numpy_fit_refuses_torch_only_options(tiny_images):
    model = new_model("logreg", tiny_images)
    with pytest.raises(SeethroughError, match="--augment"):
        fit_numpy(model, tiny_images, TrainConfig(augment="shift"))
    with pytest.raises(SeethroughError, match="--lookahead"):
        fit_numpy(model, tiny_images, TrainConfig(lookahead=True))
    with pytest.raises(SeethroughError, match="per-layer learning rates"):
        fit_numpy(model, tiny_images, TrainConfig(bias_lr_scale=2.0))


def test_cli_numpy_engine_refuses_before_reading_data(tmp_path, capsys):
    rc = main(["train", "no-such-data", "--engine", "numpy", "--lookahead", "--out", str(tmp_path)])
    assert rc == 2
    assert "--lookahead is not available with --engine numpy" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_train_and_predict_with_the_numpy_engine(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pics", n_per_class=8, size=(12, 12))
    rc = main(["train", str(root), "--model", "lenet5", "--engine", "numpy", "--epochs", "2",
               "--optimizer", "sgd", "--lr", "0.05", "--out", str(tmp_path / "runs"), "--name", "r",
               "--device", "cpu"])
    assert rc == 0
    run = tmp_path / "runs" / "r"
    for f in ("model.json", "model.safetensors", "metrics.jsonl", "evaluation.json"):
        assert (run / f).is_file(), f
    capsys.readouterr()
    probs = {}
    photo = next((root / "cats").iterdir())
    for engine in ("torch", "numpy"):
        assert main(["predict", str(run), str(photo), "--json", "--engine", engine]) == 0
        probs[engine] = json.loads(capsys.readouterr().out)
    assert probs["torch"][0]["prediction"] == probs["numpy"][0]["prediction"]
    for a, b in zip(probs["torch"][0]["top"], probs["numpy"][0]["top"]):
        assert a["class"] == b["class"] and abs(a["probability"] - b["probability"]) < 1e-5

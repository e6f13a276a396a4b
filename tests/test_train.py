"""The training loop: repeatable, resumable, early-stopping, writing a complete run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seethrough.errors import RunError, SeethroughError
from seethrough.evaluate import evaluate
from seethrough.train import TrainConfig, fit, lr_factor, new_model, read_metrics
from seethrough.trained import TrainedModel


def _train(data, run_dir=None, **cfg):
    model = new_model("tinyvgg", data, seed=cfg.get("seed", 0))
    cfg.setdefault("device", "cpu")
    history = fit(model, data, TrainConfig(**cfg), run_dir=run_dir)
    return model, history


def test_learns_the_tiny_task(tiny_images):
    model, history = _train(tiny_images, epochs=8, lr=3e-3)
    assert history[-1]["train_acc"] > 0.9
    assert evaluate(model, tiny_images).accuracy > 0.9


def test_same_seed_same_metrics(tiny_images):
    _, a = _train(tiny_images, epochs=3, seed=5)
    _, b = _train(tiny_images, epochs=3, seed=5)
    _, c = _train(tiny_images, epochs=3, seed=6)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_run_folder_contents_and_no_pickle(tiny_images, tmp_path):
    run = tmp_path / "run"
    model, history = _train(tiny_images, run_dir=run, epochs=2, schedule="cosine")
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert names == {"model.json", "model.safetensors", "metrics.jsonl", "checkpoint/state.safetensors"}
    for p in run.rglob("*"):
        if p.is_file():
            assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"
    info = json.loads((run / "model.json").read_text())
    assert info["class_names"] == ["top", "middle", "bottom"] and info["input_shape"] == [12, 12, 3]
    assert read_metrics(run) == json.loads(json.dumps(history))
    loaded = TrainedModel.load(run)
    np.testing.assert_allclose(loaded.logits(tiny_images.images), model.logits(tiny_images.images), atol=1e-6)


@pytest.mark.parametrize("extra", [{}, {"lookahead": True, "optimizer": "sgd", "lr": 0.05, "bias_lr_scale": 4.0,
                                        "head_lr_scale": 0.5, "weight_decay": 1e-3}])
def test_resume_continues_exactly(tiny_images, tmp_path, extra):
    opts = dict(seed=1, augment="shift+flip", **extra)
    _, straight = _train(tiny_images, run_dir=tmp_path / "a", epochs=4, **opts)
    _train(tiny_images, run_dir=tmp_path / "b", epochs=2, **opts)  # "killed" after 2
    model = TrainedModel.load(tmp_path / "b")
    resumed = fit(model, tiny_images, TrainConfig(epochs=4, device="cpu", **opts),
                  run_dir=tmp_path / "b", resume=True)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert strip(resumed) == strip(straight)


def test_interrupted_run_keeps_what_was_written(tiny_images, tmp_path):
    run = tmp_path / "run"

    def interrupt(epoch, model):
        if epoch == 1:
            raise KeyboardInterrupt

    model = new_model("logreg", tiny_images)
    with pytest.raises(KeyboardInterrupt):
        fit(model, tiny_images, TrainConfig(epochs=5, device="cpu"), run_dir=run, on_epoch=interrupt)
    assert len(read_metrics(run)) == 1  # epoch 1 complete and on disk
    assert TrainedModel.load(run).class_names == tiny_images.class_names
    assert not list(run.rglob("*.tmp"))


def test_early_stopping_restores_best_weights(tiny_images):
    model, history = _train(tiny_images, epochs=50, lr=0.05, patience=2, val_fraction=0.3)
    assert len(history) < 50
    best = min(r["val_loss"] for r in history)
    assert history[-1]["val_loss"] >= best


def test_schedules():
    assert lr_factor("none", 5, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 10, 10) == pytest.approx(0.0)
    assert lr_factor("step", 9, 10) == pytest.approx(0.01)
    assert lr_factor("onecycle", 2, 10) == pytest.approx(1.0)
    assert [lr_factor("triangle", s, 100) for s in (0, 23, 100)] == pytest.approx([0.2, 1.0, 0.07])
    assert lr_factor("triangle", 50, 100) == pytest.approx(1.0 - 0.93 * 27 / 77)


@pytest.mark.parametrize("field, value, message", [
    ("optimizer", "rmsprop", "--optimizer must be one of sgd, adam, adamw"),
    ("schedule", "warm", "--schedule"),
    ("epochs", 0, "--epochs must be at least 1"),
    ("lr", -1.0, "--lr must be positive"),
    ("augment", "rotate", "--augment"),
    ("precision", "fp16", "--precision must be one of fp32, bf16, auto"),
    ("shift", -1, "--shift must be 0 or more pixels"),
    ("bias_lr_scale", 0.0, "bias_lr_scale must be positive"),
])
def test_bad_options(field, value, message):
    with pytest.raises(SeethroughError, match=message):
        TrainConfig(**{field: value}).check()


def test_resume_without_checkpoint(tiny_images, tmp_path):
    model = new_model("logreg", tiny_images)
    with pytest.raises(RunError, match="no checkpoint"):
        fit(model, tiny_images, TrainConfig(epochs=1, device="cpu"), run_dir=tmp_path, resume=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_trains(tiny_images, optimizer):
    _, history = _train(tiny_images, epochs=4, optimizer=optimizer, lr=0.02 if optimizer == "sgd" else 3e-3)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_device_cuda_without_gpu_is_a_clear_error(tiny_images):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SeethroughError, match="no CUDA GPU"):
        _train(tiny_images, epochs=1, device="cuda")


def test_training_view_gives_the_same_outputs_and_gradients(tiny_images):
    from seethrough.train.view import training_view

    model = new_model("tinyvgg", tiny_images, seed=3)
    view = training_view(model.net)
    kinds = lambda net: [type(m).__name__ for m in net]
    assert kinds(view) != kinds(model.net) and sorted(kinds(view)) == sorted(kinds(model.net))
    pool = kinds(model.net).index("MaxPool2d")
    assert kinds(model.net)[pool - 1:pool + 1] == ["ReLU", "MaxPool2d"]  # the net keeps the spec's order
    assert kinds(view)[pool - 1:pool + 1] == ["MaxPool2d", "ReLU"]
    assert set(map(id, view.parameters())) == set(map(id, model.net.parameters()))  # the same parameters
    x = model.prepare(tiny_images.images[:8]).double().contiguous(memory_format=torch.channels_last)
    net = model.net.double()
    grads = []
    for f in (net, view):
        net.zero_grad()
        out = f(x)
        out.square().sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
        torch.testing.assert_close(out, net(x))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_bf16_precision_trains_close_to_fp32(tiny_images):
    from seethrough.devices import native_bf16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    m32, h32 = _train(tiny_images, epochs=8, lr=3e-3)
    m16, h16 = _train(tiny_images, epochs=8, lr=3e-3, precision="bf16")
    assert m16.meta["train"]["precision_used"] == "bf16" and m32.meta["train"]["precision_used"] == "fp32"
    assert h16[-1]["train_loss"] < h16[0]["train_loss"]
    assert abs(h16[0]["train_loss"] - h32[0]["train_loss"]) < 0.05  # the same first epoch, to bf16's rounding
    assert h16[-1]["val_acc"] >= h32[-1]["val_acc"] - 0.15
    assert all(p.dtype == torch.float32 for p in m16.net.parameters())  # the weights themselves stay float32


def test_cutout_blanks_one_square_per_image_repeatably(tiny_images):
    from seethrough.data.augment import random_cutout

    x = torch.ones(64, 3, 32, 32)
    out = random_cutout(x, 12, torch.Generator().manual_seed(0))
    again = random_cutout(x, 12, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    zeros = (out == 0).all(1)                                   # (N, H, W): every channel blanked together
    assert torch.equal((out == 0).any(1), zeros)
    counts = zeros.sum((1, 2))
    assert counts.max() == 144 and counts.min() >= 36            # whole squares, or cut by the border
    for img in zeros:                                           # the blanked pixels form one axis-aligned rectangle
        r, c = img.any(1).nonzero().flatten(), img.any(0).nonzero().flatten()
        assert img.sum() == len(r) * len(c) and r.max() - r.min() + 1 == len(r) and c.max() - c.min() + 1 == len(c)
    _, history = _train(tiny_images, epochs=2, augment="shift+flip+cutout")
    assert len(history) == 2



def test_param_groups_scale_the_learning_rate_but_not_the_decay_per_step(tiny_images):
    from seethrough.train.loop import param_groups

    net = new_model("fastmnist", tiny_images).net
    cfg = TrainConfig(lr=0.1, weight_decay=1e-3, bias_lr_scale=64.0, head_lr_scale=1 / 81)
    groups = param_groups(net, cfg)
    names = {id(p): n for n, p in net.named_parameters()}
    by_scale = {g["lr_scale"]: sorted(names[id(p)] for p in g["params"]) for g in groups}
    assert by_scale[64.0] == sorted(n for n in names.values() if n.startswith("batchnorm") and n.endswith("bias"))
    assert by_scale[1 / 81] == ["linear1.weight"]
    assert sum(len(g["params"]) for g in groups) == len(names)          # every parameter once
    for g in groups:
        assert g["lr_scale"] * g["weight_decay"] == pytest.approx(cfg.weight_decay)
    assert len(param_groups(net, TrainConfig())) == 1


def test_head_lr_scale_trains_as_logits_scaled_by_a_ninth():
    """airbench multiplies the logits by 1/9; a head 9x smaller learning 81x slower is the same training."""
    from seethrough.train.loop import make_optimizer

    torch.manual_seed(0)
    x, y = torch.randn(32, 6, dtype=torch.float64), torch.randint(0, 3, (32,))
    a = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3, bias=False)).double()
    b = torch.nn.Sequential(*[torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3, bias=False)]).double()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b[2].weight.mul_(1 / 9)
    cfg = dict(optimizer="sgd", lr=0.3, momentum=0.85, weight_decay=1e-2)
    opt_a = make_optimizer(a, TrainConfig(**cfg))
    opt_b = make_optimizer(b, TrainConfig(**cfg, head_lr_scale=1 / 81))
    for _ in range(5):
        for net, opt, scale in ((a, opt_a, 1 / 9), (b, opt_b, 1.0)):
            for g in opt.param_groups:
                g["lr"] = cfg["lr"] * g["lr_scale"]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x) * scale, y, label_smoothing=0.2).backward()
            opt.step()
    torch.testing.assert_close(b(x), a(x) / 9)
    torch.testing.assert_close(b[0].weight, a[0].weight)


def test_balanced_weights_are_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    from seethrough.train.loop import balanced_weights

    labels = np.array([0] * 7 + [1] * 2 + [3] * 5)
    w = balanced_weights(labels, 4).numpy()
    np.testing.assert_allclose(w[[0, 1, 3]], compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=labels)
                               * 3 / 4, rtol=1e-6)   # scikit-learn divides by the 3 classes present, we by all 4
    assert w[2] == 0                                   # a class without images weighs nothing


def test_class_weights_from_a_dict_by_index_or_name():
    from seethrough.train.loop import class_weights

    names = ["top", "middle", "bottom"]
    labels = np.array([0, 0, 1, 2])
    assert class_weights("none", labels, names, "cpu") is None
    assert class_weights({"bottom": 3.0, 0: 0.5}, labels, names, "cpu").tolist() == [0.5, 1.0, 3.0]
    with pytest.raises(SeethroughError, match="'left'.*one of: top, middle, bottom"):
        class_weights({"left": 2.0}, labels, names, "cpu")
    with pytest.raises(SeethroughError, match="class_weight must be weights 0 or more"):
        TrainConfig(class_weight={0: -1.0}).check()


def test_balanced_class_weight_trains_as_the_rare_images_repeated(tiny_images):
    """Classes of 30, 15 and 10 images weighted 1 : 2 : 3 give the same full-batch gradients as
    30 images of each, the rarer ones repeated."""
    import copy

    keep = np.flatnonzero((tiny_images.labels == 0) | ((tiny_images.labels == 1) & (np.arange(90) < 45))
                          | ((tiny_images.labels == 2) & (np.arange(90) < 30)))
    few = tiny_images.subset(keep)
    assert np.bincount(few.labels).tolist() == [30, 15, 10]
    repeat = np.concatenate([np.flatnonzero(few.labels == 0)] + [np.flatnonzero(few.labels == 1)] * 2
                            + [np.flatnonzero(few.labels == 2)] * 3)
    many = few.subset(repeat)
    model = new_model("logreg", few, seed=0)
    twin, plain = copy.deepcopy(model), copy.deepcopy(model)
    cfg = dict(epochs=3, batch_size=1000, optimizer="sgd", lr=0.05, val_fraction=0.0, device="cpu")
    fit(model, few, TrainConfig(**cfg, class_weight="balanced"))
    fit(twin, many, TrainConfig(**cfg))
    for a, b in zip(model.net.parameters(), twin.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    fit(plain, few, TrainConfig(**cfg))                # unweighted, the same images: another model
    assert not torch.allclose(next(plain.net.parameters()), next(model.net.parameters()), atol=1e-4)


def test_lookahead_averages_every_fifth_step():
    from seethrough.train.lookahead import Lookahead

    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    la = Lookahead(net, total_steps=10)
    slow = 1.0
    for step in range(1, 11):
        with torch.no_grad():
            net.weight.add_(1.0)       # a stand-in for an optimizer step
        fast = net.weight[0, 0].item()
        la.step(net, step)
        if step % 5 == 0:
            d = 0.95 ** 5 * (step / 10) ** 3
            slow = d * slow + (1 - d) * fast
            assert net.weight[0, 0].item() == pytest.approx(slow)     # restarts from the slow weights
        else:
            assert net.weight[0, 0].item() == pytest.approx(fast)
    assert la.decay(10) == pytest.approx(0.95 ** 5)


def test_flips_alternate_between_epochs():
    from seethrough.data.augment import augment, flip_rows

    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    mask = torch.tensor([True, False])
    out = flip_rows(x, mask)
    assert torch.equal(out[0], x[0].flip(2)) and torch.equal(out[1], x[1])
    both = augment(augment(x, torch.Generator(), pad=0, flip=mask), torch.Generator(), pad=0, flip=~mask)
    assert torch.equal(both, x.flip(3))      # over two epochs every image is seen once each way

"""Every attribution method against Captum's implementation on the same model and images.

Captum (captum.ai) is a test-only oracle. Its methods take a plain forward function, so
the model is wrapped as pixels (0..255, float) -> standardisation -> net: the gradients
Captum takes are then with respect to the pixels, as ours are by default. Deterministic
methods must agree to a Spearman rank correlation of 0.999 or more per image; SmoothGrad
draws its own noise, so it must agree with Captum about as well as it agrees with
itself under another seed (the noise floor).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seethrough.explain import explain
from seethrough.explain.randomization import spearman_rows

from explain_helpers import random_images, random_model

captum_attr = pytest.importorskip("captum.attr")

SPEC = ["conv(out=6, k=3, pad=1)", "relu", "maxpool(k=2)", "conv(out=8, k=3, pad=1)", "relu",
        "flatten", "linear(out=4)"]
SHAPE = (16, 16, 3)


def pixel_forward(model, two_class=False, softmax=False):
    def forward(pixels):  # (N, C, H, W) float pixels
        logits = model.net(model.preprocess(pixels))
        if softmax:
            return logits.softmax(1)
        if two_class:  # our explained score for two classes: the logit difference
            return torch.stack([logits[:, 0] - logits[:, 1], logits[:, 1] - logits[:, 0]], 1)
        return logits
    return forward


def setup(spec=SPEC, n_classes=4, seed=0):
    model = random_model(spec, SHAPE, n_classes=n_classes, seed=seed)
    images = random_images(3, SHAPE, seed=seed)
    pixels = torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2).contiguous()
    target = model.predict(images)
    return model, images, pixels, target


def assert_agree(ours: np.ndarray, theirs: np.ndarray, floor: float = 0.999):
    rho = spearman_rows(ours.reshape(len(ours), -1), theirs.reshape(len(theirs), -1))
    assert (rho >= floor).all(), rho


def test_saliency():
    model, images, pixels, target = setup()
    theirs = captum_attr.Saliency(pixel_forward(model)).attribute(pixels, target=target.tolist(), abs=True)
    assert_agree(explain(model, images, "saliency", target=target), theirs.amax(1).numpy())
    np.testing.assert_allclose(explain(model, images, "saliency", target=target), theirs.amax(1).numpy(),
                               rtol=1e-4, atol=1e-9)


def test_gradcam():
    model, images, pixels, target = setup()
    gc = captum_attr.LayerGradCam(pixel_forward(model), model.net.get_submodule("conv2"))
    cam = gc.attribute(pixels, target=target.tolist(), relu_attributions=True)
    theirs = captum_attr.LayerAttribution.interpolate(cam, (16, 16), "bilinear")[:, 0]
    ours = explain(model, images, "gradcam", target=target)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert_agree(ours, theirs.detach().numpy())


@pytest.mark.parametrize("baseline", ["mean", "black"])
def test_integrated_gradients(baseline):
    model, images, pixels, target = setup()
    mean = torch.tensor(model.preprocess.mean).view(1, -1, 1, 1)
    base = mean.expand_as(pixels) if baseline == "mean" else torch.zeros_like(pixels)
    ig = captum_attr.IntegratedGradients(pixel_forward(model))
    theirs = ig.attribute(pixels, baselines=base, target=target.tolist(), n_steps=32, method="riemann_middle")
    ours = explain(model, images, "integrated_gradients", target=target, steps=32, baseline=baseline)
    assert_agree(ours, theirs.sum(1).detach().numpy())
    np.testing.assert_allclose(ours, theirs.sum(1).detach().numpy(), rtol=1e-3, atol=1e-5)


def test_occlusion():
    model, images, pixels, target = setup()
    mean = torch.tensor(model.preprocess.mean).view(1, -1, 1, 1).expand_as(pixels)
    occ = captum_attr.Occlusion(pixel_forward(model, softmax=True))
    theirs = occ.attribute(pixels, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), baselines=mean,
                           target=target.tolist())[:, 0]   # (16 - 4) is a multiple of 2: the same patches
    ours = explain(model, images, "occlusion", target=target, patch=4, stride=2)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert_agree(ours, theirs.numpy())


def test_smoothgrad_within_the_noise_floor():
    model, images, pixels, target = setup()
    n, level = 300, 0.15
    ours = explain(model, images, "smoothgrad", target=target, samples=n, noise=level, seed=0)
    other_seed = explain(model, images, "smoothgrad", target=target, samples=n, noise=level, seed=1)
    floor = spearman_rows(ours.reshape(3, -1), other_seed.reshape(3, -1))
    nt = captum_attr.NoiseTunnel(captum_attr.Saliency(pixel_forward(model)))
    theirs = []
    for i in range(3):  # Captum's stdev is one number per call: our noise is relative to each image's range
        sd = level * float(pixels[i].max() - pixels[i].min())
        torch.manual_seed(i)
        theirs.append(nt.attribute(pixels[i:i + 1], nt_type="smoothgrad", nt_samples=n, stdevs=sd,
                                   target=int(target[i]), abs=True).amax(1)[0].numpy())
    rho = spearman_rows(ours.reshape(3, -1), np.stack(theirs).reshape(3, -1))
    assert (rho >= floor - 0.02).all(), (rho, floor)
    assert (floor > 0.9).all()


def test_linear_methods():
    model, images, pixels, target = setup(["flatten", "linear(out=4)"])
    theirs = captum_attr.Saliency(pixel_forward(model)).attribute(pixels, target=target.tolist(), abs=False)
    assert_agree(explain(model, images, "weight_map", target=target), theirs.sum(1).numpy())
    x = model.prepare(images)
    ixg = captum_attr.InputXGradient(model.net).attribute(x, target=target.tolist()).sum(1).detach().numpy()
    ours = explain(model, images, "weight_x_input", target=target)
    assert_agree(ours, ixg)
    np.testing.assert_allclose(ours, ixg, rtol=1e-4, atol=1e-5)


def test_two_class_model_explains_the_logit_difference():
    model, images, pixels, target = setup(SPEC[:-1] + ["linear(out=2)"], n_classes=2)
    forward = pixel_forward(model, two_class=True)
    theirs = captum_attr.IntegratedGradients(forward).attribute(
        pixels, baselines=torch.tensor(model.preprocess.mean).view(1, -1, 1, 1).expand_as(pixels),
        target=target.tolist(), n_steps=32, method="riemann_middle").sum(1).detach().numpy()
    assert_agree(explain(model, images, "integrated_gradients", target=target, steps=32), theirs)

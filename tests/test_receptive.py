"""Receptive fields computed from the spec, checked by gradients for every registered model.

For a unit of an image-shaped layer, the gradient of that unit with respect to the input
must be zero outside the computed field (in the real network, random weights and
input), and non-zero on every pixel of the field, border included, when every path can
carry gradient: positive weights and input keep every ReLU open, and max pooling, which
sends the gradient through one element per window, is swapped for average pooling of
the same size and stride (the same geometry).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seethrough.explain import receptive_field_table, receptive_fields
from seethrough.models import create_spec, infer_shapes, list_models
from seethrough.models.torch_build import build_torch

SHAPE = (2, 28, 28)  # (C, H, W)


def unit_gradient(net, layer_index: int, unit: tuple, x: torch.Tensor) -> np.ndarray:
    """|d out[unit] / d x| summed over channels: (H, W)."""
    x = x.clone().requires_grad_(True)
    out = net[:layer_index + 1](x)[0]
    grad, = torch.autograd.grad(out[unit], x)
    return grad[0].abs().sum(0).numpy()


def all_paths_open(net: nn.Sequential) -> nn.Sequential:
    torch.manual_seed(1)
    for name, m in list(net.named_children()):
        if isinstance(m, nn.MaxPool2d):
            setattr(net, name, nn.AvgPool2d(m.kernel_size, m.stride))
        for p in m.parameters(recurse=False):
            p.data = torch.rand_like(p) + 0.5
    return net


def field_mask(f, unit, h, w) -> np.ndarray:
    r0, r1, c0, c1 = f.unit_bounds(unit, h, w)
    mask = np.zeros((h, w), bool)
    mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


@pytest.mark.parametrize("name", list_models())
def test_computed_field_matches_gradients(name):
    c, h, w = SHAPE
    spec = create_spec(name, SHAPE, 3)
    fields = receptive_fields(spec, SHAPE)
    shapes = infer_shapes(spec, SHAPE)
    torch.manual_seed(0)
    real = build_torch(spec, SHAPE).double().eval()
    open_net = all_paths_open(build_torch(spec, SHAPE).double().eval())
    x_real = torch.randn(1, c, h, w, dtype=torch.float64)
    x_pos = torch.rand(1, c, h, w, dtype=torch.float64) + 0.5
    checked = 0
    for index, (f, shape) in enumerate(zip(fields, shapes)):
        units = [(0, shape[1] // 2, shape[2] // 2), (0, 0, 0), (0, shape[1] - 1, shape[2] - 1)] \
            if len(shape) == 3 else [(0,), (shape[0] // 2,), (shape[0] - 1,)]
        for unit in units:
            mask = field_mask(f, unit, h, w)
            g = unit_gradient(real, index, unit, x_real)
            assert not g[~mask].any(), f"{name} {f.layer} unit {unit}: gradient outside the computed field"
            g_open = unit_gradient(open_net, index, unit, x_pos)
            assert (g_open[mask] > 0).all(), f"{name} {f.layer} unit {unit}: zero gradient inside the field"
            checked += 1
    assert checked >= len(spec)


def check_spec_by_gradients(layers, shape):
    """Every unit of every layer of a hand-made spec: the computed field is exactly where gradient flows."""
    c, h, w = shape
    spec = create_spec(layers, shape, 3)
    fields = receptive_fields(spec, shape)
    shapes = infer_shapes(spec, shape)
    torch.manual_seed(0)
    real = build_torch(spec, shape).double().eval()
    open_net = all_paths_open(build_torch(spec, shape).double().eval())
    x_real = torch.randn(1, c, h, w, dtype=torch.float64)
    x_pos = torch.rand(1, c, h, w, dtype=torch.float64) + 0.5
    for index, (f, out) in enumerate(zip(fields, shapes)):
        units = [(0, i, j) for i in range(out[1]) for j in range(out[2])] if len(out) == 3 \
            else [(k,) for k in range(out[0])]
        for unit in units:
            mask = field_mask(f, unit, h, w)
            assert not unit_gradient(real, index, unit, x_real)[~mask].any(), f"{f.layer} {unit}: outside"
            assert (unit_gradient(open_net, index, unit, x_pos)[mask] > 0).all(), f"{f.layer} {unit}: inside"
    return {f.layer: f for f in fields}


def test_dropout_and_relu_after_flatten_keep_each_units_field():
    fields = check_spec_by_gradients(["conv(out=2, k=3)", "flatten", "dropout", "relu", "linear(out=3)"], (1, 6, 6))
    assert fields["dropout1"].grid == (2, 4, 4) and fields["dropout1"].size == 3
    assert fields["relu1"].unit_bounds((0,), 6, 6) == (0, 2, 0, 2)
    assert fields["linear1"].region == (0, 5, 0, 5)


def test_padded_conv_after_a_pooling_remainder_is_clipped_at_the_pooled_map():
    # 9x9 -> maxpool 2 -> 4x4 (row and column 8 dropped) -> conv k3 pad 1: the last unit reads pooled
    # units 2..3 (the third is padding), i.e. input rows 4..7, not 4..8 as the nominal field says
    fields = check_spec_by_gradients(["maxpool(k=2)", "conv(out=2, k=3, pad=1)", "flatten", "linear(out=3)"],
                                     (1, 9, 9))
    conv = fields["conv1"]
    assert conv.bounds(3, 3, 9, 9) == (4, 7, 4, 7)
    assert (conv.size, conv.jump, conv.start) == (6, 2, -2)  # the nominal field, for the table
    assert fields["linear1"].region == (0, 7, 0, 7)


def test_known_fields_of_seed_cnn():
    # conv3 (k3) -> 3, maxpool2 -> 4 (jump 2), conv3 -> 8, maxpool2 -> 10 (jump 4), conv3 -> 18
    spec = create_spec("seed-cnn", (3, 32, 32), 10)
    by_name = {f.layer: f for f in receptive_fields(spec, (3, 32, 32))}
    assert [(by_name[n].size, by_name[n].jump) for n in ("conv1", "maxpool1", "conv2", "maxpool2", "conv3")] \
        == [(3, 1), (4, 2), (8, 2), (10, 4), (18, 4)]
    assert by_name["flatten1"].size == 18 and by_name["flatten1"].grid == (64, 4, 4)
    assert by_name["linear1"].size is None


def test_padding_moves_the_start_and_the_table_reads():
    spec = create_spec("tinyvgg", (1, 16, 16), 2)
    f = {f.layer: f for f in receptive_fields(spec, (1, 16, 16))}
    assert (f["conv1"].start, f["conv2"].start, f["conv3"].start) == (-1, -2, -4)
    from explain_helpers import random_model

    rows = receptive_field_table(random_model("tinyvgg", (16, 16, 1), 2))
    assert rows[0] == {"layer": "conv1", "kind": "conv", "output": "16x16x16", "field": "3x3",
                       "jump": "1", "start": "-1"}
    assert rows[-1]["field"] == "whole image (16x16)"


def test_pooling_remainder_leaves_the_last_rows_unseen():
    # seed-cnn on 28x28: the last map is 3x3 with fields of 18 every 4 pixels: rows 0..25 only
    spec = create_spec("seed-cnn", (1, 28, 28), 10)
    linear = [f for f in receptive_fields(spec, (1, 28, 28)) if f.layer == "linear1"][0]
    assert linear.region == (0, 25, 0, 25)

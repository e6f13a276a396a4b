"""Receptive fields computed from the spec.

A unit u of a layer with kernel k, stride s and padding p reads the units
u*s - p .. u*s - p + k - 1 of its input. Written in input pixels, unit u of every
image-shaped layer covers ``u * jump + start`` .. ``u * jump + start + size - 1``,
with, layer after layer,

    jump  <- jump * s
    start <- start - p * jump_in
    size  <- size + (k - 1) * jump_in

from jump = 1, start = 0, size = 1 at the input (ReLU, batchnorm and dropout keep all
three). ``flatten`` keeps each unit's field (unit k is unit (c, i, j) of the map before
it); after ``linear`` or ``gap`` every unit sees the union of the last map's fields: the
whole image, less the rows and columns that pooling with a remainder drops. The computed field
is checked against gradients in tests/test_receptive.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import infer_shapes


@dataclass(frozen=True)
class Field:
    layer: str
    kind: str
    output_shape: tuple
    size: int | None      # field side in input pixels; None: the whole image
    jump: int | None      # input pixels between neighbouring units
    start: int | None     # first input pixel of unit 0 (negative: reaches into the padding)
    grid: tuple | None = None  # flatten: the (C, h, w) map its units come from
    region: tuple | None = None  # linear, gap: input rows r0..r1, columns c0..c1 every unit sees

    def unit_bounds(self, unit: tuple, height: int, width: int) -> tuple[int, int, int, int]:
        """Like :meth:`bounds` for a unit index of this layer's output: (c, i, j) or (k,)."""
        if self.size is None:
            return self.region or (0, height - 1, 0, width - 1)
        if len(unit) == 1:
            unit = tuple(int(v) for v in np.unravel_index(unit[0], self.grid))
        return self.bounds(unit[-2], unit[-1], height, width)

    def bounds(self, i: int, j: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Input rows r0..r1 and columns c0..c1 (inclusive) seen by unit (i, j), clipped to the image."""
        if self.size is None:
            return self.region or (0, height - 1, 0, width - 1)
        r0, c0 = i * self.jump + self.start, j * self.jump + self.start
        return (max(0, r0), min(height - 1, r0 + self.size - 1),
                max(0, c0), min(width - 1, c0 + self.size - 1))


def receptive_fields(spec, in_chw: tuple) -> list[Field]:
    """One :class:`Field` per layer of ``spec`` for input (C, H, W)."""
    shapes = infer_shapes(spec, in_chw)
    _, h, w = in_chw
    size, jump, start, flat, last = 1, 1, 0, False, (tuple(in_chw), 1, 1, 0)
    out = []
    for layer, prev, shape in zip(spec, [tuple(in_chw)] + shapes[:-1], shapes):
        p = layer.params
        if layer.kind == "conv":
            k, s, pad = p["k"], p["stride"], p["pad"]
        elif layer.kind in ("maxpool", "avgpool"):
            k, s, pad = p["k"], p["stride"] or p["k"], 0
        else:
            k, s, pad = 1, 1, 0
        if layer.kind == "flatten" and not flat:  # each flat unit keeps its map unit's field
            out.append(Field(layer.name, layer.kind, tuple(shape), size, jump, start, grid=prev))
            flat, last = True, (prev, size, jump, start)
            continue
        if not flat and (layer.kind in ("gap", "linear") or len(shape) != 3):
            flat, last = True, (prev, size, jump, start)
        if flat:
            (_, mh, mw), sz, jp, st = last  # every unit of the last map, in input pixels
            region = (max(0, st), min(h - 1, (mh - 1) * jp + st + sz - 1),
                      max(0, st), min(w - 1, (mw - 1) * jp + st + sz - 1))
            out.append(Field(layer.name, layer.kind, tuple(shape), None, None, None, region=region))
            continue
        start -= pad * jump
        size += (k - 1) * jump
        jump *= s
        out.append(Field(layer.name, layer.kind, tuple(shape), size, jump, start))
    return out


def receptive_field_table(model) -> list[dict]:
    """Rows for a report or the command line: layer, kind, output, field, jump, start."""
    c, h, w = model.in_chw
    rows = []
    for f in receptive_fields(model.spec, model.in_chw):
        if f.size is None:
            r0, r1, c0, c1 = f.region
            seen = r1 - r0 + 1, c1 - c0 + 1
            field = f"whole image ({h}x{w})" if seen == (h, w) else f"{seen[0]}x{seen[1]} of the {h}x{w} image"
        else:
            field = f"{f.size}x{f.size}" + (" per unit" if f.grid else "")
        rows.append({"layer": f.layer, "kind": f.kind, "output": "x".join(map(str, f.output_shape)),
                     "field": field, "jump": "-" if f.jump is None else str(f.jump),
                     "start": "-" if f.start is None else str(f.start)})
    return rows

"""Receptive fields computed from the spec.

A unit u of a layer with kernel k, stride s and padding p reads the units
u*s - p .. u*s - p + k - 1 of its input. Written in input pixels, the nominal field of
every image-shaped layer is ``u * jump + start`` .. ``u * jump + start + size - 1``,
with, layer after layer,

    jump  <- jump * s
    start <- start - p * jump_in
    size  <- size + (k - 1) * jump_in

from jump = 1, start = 0, size = 1 at the input (ReLU, batchnorm and dropout keep all
three). That formula overstates a field wherever a window reaches past the edge of an
intermediate map (into padding, or into the rows a pooling with a remainder dropped), so
the bounds of each unit are also carried exactly: along each axis, unit u's first and last
input pixel are those of the first and last unit of the previous map its window reads,
the window clipped to that map. ``flatten`` keeps each unit's field (unit k is unit
(c, i, j) of the map before it), and so does any element-wise layer after it (ReLU,
batchnorm, dropout); after ``linear`` or ``gap`` every unit sees the union of the last
map's fields. The computed fields are checked against gradients in tests/test_receptive.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import infer_shapes

ELEMENTWISE = ("relu", "batchnorm", "dropout")


@dataclass(frozen=True)
class Field:
    layer: str
    kind: str
    output_shape: tuple
    size: int | None      # nominal field side in input pixels; None: the whole image
    jump: int | None      # input pixels between neighbouring units
    start: int | None     # first input pixel of unit 0 (negative: reaches into the padding)
    grid: tuple | None = None  # flat layers that keep per-unit fields: the (C, h, w) map their units come from
    region: tuple | None = None  # linear, gap: input rows r0..r1, columns c0..c1 every unit sees
    rows: tuple | None = None  # per unit row i of the map: (first, last) input row, clipped at every map
    cols: tuple | None = None  # the same per column

    def unit_bounds(self, unit: tuple, height: int, width: int) -> tuple[int, int, int, int]:
        """Like :meth:`bounds` for a unit index of this layer's output: (c, i, j) or (k,)."""
        if self.size is None:
            return self.region or (0, height - 1, 0, width - 1)
        if len(unit) == 1:
            unit = tuple(int(v) for v in np.unravel_index(unit[0], self.grid))
        return self.bounds(unit[-2], unit[-1], height, width)

    def bounds(self, i: int, j: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Input rows r0..r1 and columns c0..c1 (inclusive) seen by unit (i, j), clipped to the image
        and to every intermediate map."""
        if self.size is None:
            return self.region or (0, height - 1, 0, width - 1)
        if self.rows is not None:
            return (*self.rows[i], *self.cols[j])
        r0, c0 = i * self.jump + self.start, j * self.jump + self.start
        return (max(0, r0), min(height - 1, r0 + self.size - 1),
                max(0, c0), min(width - 1, c0 + self.size - 1))


def _clipped(prev: tuple, n_out: int, k: int, s: int, pad: int) -> tuple:
    """Per output unit along one axis: (first, last) input pixel, from the previous map's ``prev``."""
    out = []
    for u in range(n_out):
        a, b = max(0, u * s - pad), min(len(prev) - 1, u * s - pad + k - 1)
        out.append((prev[a][0], prev[b][1]))
    return tuple(out)


def receptive_fields(spec, in_chw: tuple) -> list[Field]:
    """One :class:`Field` per layer of ``spec`` for input (C, H, W)."""
    shapes = infer_shapes(spec, in_chw)
    _, h, w = in_chw
    size, jump, start = 1, 1, 0
    rows, cols = tuple((i, i) for i in range(h)), tuple((j, j) for j in range(w))
    kept = None  # after flatten: the Field whose per-unit fields element-wise layers keep
    region = None  # once every unit sees the whole last map
    prev_shape = tuple(in_chw)
    out = []
    for layer, shape in zip(spec, shapes):
        p = layer.params
        if region is None and kept is not None and layer.kind in ELEMENTWISE:
            kept = Field(layer.name, layer.kind, tuple(shape), kept.size, kept.jump, kept.start,
                         grid=kept.grid, rows=kept.rows, cols=kept.cols)
            out.append(kept)
            continue
        if region is None and kept is None and layer.kind == "flatten":
            kept = Field(layer.name, layer.kind, tuple(shape), size, jump, start, grid=prev_shape,
                         rows=rows, cols=cols)
            out.append(kept)
            continue
        if region is None and (kept is not None or layer.kind in ("gap", "linear") or len(shape) != 3):
            region = (rows[0][0], rows[-1][1], cols[0][0], cols[-1][1])  # every unit of the last map
        if region is not None:
            out.append(Field(layer.name, layer.kind, tuple(shape), None, None, None, region=region))
            continue
        if layer.kind == "conv":
            k, s, pad = p["k"], p["stride"], p["pad"]
        elif layer.kind in ("maxpool", "avgpool"):
            k, s, pad = p["k"], p["stride"] or p["k"], 0
        else:
            k, s, pad = 1, 1, 0
        rows = _clipped(rows, shape[1], k, s, pad)
        cols = _clipped(cols, shape[2], k, s, pad)
        start -= pad * jump
        size += (k - 1) * jump
        jump *= s
        out.append(Field(layer.name, layer.kind, tuple(shape), size, jump, start, rows=rows, cols=cols))
        prev_shape = tuple(shape)
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

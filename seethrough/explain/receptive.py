"""Receptive fields computed from the spec.

A unit u of a layer with kernel k, stride s and padding p reads the units
u*s - p .. u*s - p + k - 1 of its input. Written in input pixels, unit u of every
image-shaped layer covers ``u * jump + start`` .. ``u * jump + start + size - 1``,
with, layer after layer,

    jump  <- jump * s
    start <- start - p * jump_in
    size  <- size + (k - 1) * jump_in

from jump = 1, start = 0, size = 1 at the input (ReLU, batchnorm and dropout keep all
three). After ``flatten`` or ``gap`` every unit sees the whole image. The computed field
is checked against gradients in tests/test_receptive.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import infer_shapes


@dataclass(frozen=True)
class Field:
    layer: str
    kind: str
    output_shape: tuple
    size: int | None      # field side in input pixels; None: the whole image
    jump: int | None      # input pixels between neighbouring units
    start: int | None     # first input pixel of unit 0 (negative: reaches into the padding)

    def bounds(self, i: int, j: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Input rows r0..r1 and columns c0..c1 (inclusive) seen by unit (i, j), clipped to the image."""
        if self.size is None:
            return 0, height - 1, 0, width - 1
        r0, c0 = i * self.jump + self.start, j * self.jump + self.start
        return (max(0, r0), min(height - 1, r0 + self.size - 1),
                max(0, c0), min(width - 1, c0 + self.size - 1))


def receptive_fields(spec, in_chw: tuple) -> list[Field]:
    """One :class:`Field` per layer of ``spec`` for input (C, H, W)."""
    shapes = infer_shapes(spec, in_chw)
    size, jump, start, flat = 1, 1, 0, False
    out = []
    for layer, shape in zip(spec, shapes):
        p = layer.params
        if layer.kind == "conv":
            k, s, pad = p["k"], p["stride"], p["pad"]
        elif layer.kind in ("maxpool", "avgpool"):
            k, s, pad = p["k"], p["stride"] or p["k"], 0
        else:
            k, s, pad = 1, 1, 0
        if layer.kind in ("flatten", "gap", "linear") or len(shape) != 3:
            flat = True
        if flat:
            out.append(Field(layer.name, layer.kind, tuple(shape), None, None, None))
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
        whole = f.size is None or f.size >= max(h, w) and f.start <= 0
        rows.append({"layer": f.layer, "kind": f.kind, "output": "x".join(map(str, f.output_shape)),
                     "field": f"whole image ({h}x{w})" if f.size is None else
                              f"{f.size}x{f.size}" + (" (covers the image)" if whole else ""),
                     "jump": "-" if f.jump is None else str(f.jump),
                     "start": "-" if f.start is None else str(f.start)})
    return rows

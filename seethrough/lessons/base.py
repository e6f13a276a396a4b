"""What a lesson returns: a title and a list of blocks (text, number grids, tables, figures).

Lessons compute; :mod:`.render` draws the blocks in the terminal or as an HTML page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Text:
    text: str


@dataclass
class Grid:
    """A 2-D array of numbers (or a 3-D one, drawn channel by channel) under a title."""

    title: str
    values: np.ndarray
    digits: int = 3


@dataclass
class Table:
    header: list[str]
    rows: list[list]
    title: str = ""


@dataclass
class Figure:
    png: bytes
    caption: str
    path: str | None = None  # where it was also written, if anywhere


@dataclass
class Lesson:
    name: str
    title: str
    blocks: list = field(default_factory=list)

    def text(self, text: str) -> "Lesson":
        self.blocks.append(Text(text))
        return self

    def grid(self, title: str, values, digits: int = 3) -> "Lesson":
        self.blocks.append(Grid(title, np.array(values, dtype=np.float64), digits))  # a copy: later steps may change the array
        return self

    def grids(self, *pairs) -> "Lesson":
        """Several grids drawn side by side: ``grids(("x", x), ("w", w))``."""
        self.blocks.append([Grid(t, np.array(v, dtype=np.float64)) for t, v in pairs])
        return self

    def table(self, header, rows, title: str = "") -> "Lesson":
        self.blocks.append(Table(list(header), [list(r) for r in rows], title))
        return self

    def figure(self, png: bytes, caption: str, path=None) -> "Lesson":
        self.blocks.append(Figure(png, caption, None if path is None else str(path)))
        return self



def fmt(v, digits: int = 3) -> str:
    """A number as short text: integers without a decimal point, others rounded."""
    v = float(v)
    if abs(v) < 1e-12:  # float rounding noise such as 5.55e-17 from 0.1 + 0.2 - 0.3
        v = 0.0
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) >= 10 ** -digits else f"{v:.2e}"


def dot_text(window, kernel, digits: int = 3) -> str:
    """'a*b + c*d + ...' for a window and a kernel of the same shape."""
    def term(v):
        text = fmt(v, digits)
        return f"({text})" if text.startswith("-") else text

    return " + ".join(f"{term(a)}·{term(b)}" for a, b in zip(np.ravel(window), np.ravel(kernel)))

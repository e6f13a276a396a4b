"""Pooling: summarise each window by its largest value (max) or its mean (average)."""

from __future__ import annotations

from . import examples
from .base import Lesson, fmt
from .engine import pool, pool_windows
from .inputs import check_window, read_image


def run(image=None, kernel=None, stride: int = 0, padding: int = 0, size: int = 2, **_) -> Lesson:
    x = read_image(image) if image else examples.POOL_INPUT
    k = size
    s = stride or k  # a pool's stride defaults to its size
    check_window(x.shape, k, s, 0, what="pool size")
    mx, av = pool(x, "max", k, s), pool(x, "avg", k, s)
    wins = pool_windows(x, k, s)
    lesson = Lesson("pooling", "Pooling")
    lesson.text(f"A {k}x{k} pool at stride {s} looks at each window and keeps one number: "
                "the largest (max pooling) or the mean (average pooling).")
    lesson.grids(("input", x), (f"max pool {k}x{k}", mx), (f"average pool {k}x{k}", av))
    rows = []
    for r in range(mx.shape[0]):
        for c in range(mx.shape[1]):
            win = wins[r, c].ravel()
            rows.append([f"({r}, {c})", ", ".join(fmt(v) for v in win), fmt(mx[r, c]),
                         f"({' + '.join(fmt(v) for v in win)}) / {win.size} = {fmt(av[r, c])}"])
    lesson.table(["output", "window", "max", "average"], rows, "each window")
    lesson.text("Max pooling passes the whole gradient to the window's largest input; average pooling gives "
                f"each input 1/{k * k} of it. Either way the map shrinks and small shifts matter less.")
    return lesson

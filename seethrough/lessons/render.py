"""Draw a :class:`~seethrough.lessons.base.Lesson`: rich grids in the terminal, or one HTML page."""

from __future__ import annotations

from rich import box
from rich.columns import Columns
from rich.console import Console, Group
from rich.table import Table as RichTable
from rich.text import Text as RichText

from ..report import html as H
from .base import Figure, Grid, Lesson, Table, Text, fmt


def _channels(grid: Grid):
    v = grid.values
    if v.ndim == 3:
        return [(f"channel {c}", v[c]) for c in range(len(v))]
    if v.ndim <= 1:
        return [(grid.title, v.reshape(1, -1))]
    return [(grid.title, v)]


def _rich_grid(title, values, digits):
    t = RichTable(title=title, show_header=False, box=box.SQUARE, padding=(0, 1), title_style="bold")
    for _ in range(values.shape[1]):
        t.add_column(justify="right")
    for row in values:
        t.add_row(*(fmt(v, digits) for v in row))
    return t


def _rich_block(block):
    if isinstance(block, list):
        return Columns([_rich_block(b) for b in block], padding=(0, 3))
    if isinstance(block, Text):
        return RichText(block.text)
    if isinstance(block, Grid):
        parts = [_rich_grid(t, v, block.digits) for t, v in _channels(block)]
        if len(parts) == 1:
            return parts[0]
        return Group(RichText(block.title, style="bold"), Columns(parts, padding=(0, 3)))
    if isinstance(block, Table):
        t = RichTable(title=block.title or None, box=box.SIMPLE_HEAD, title_style="bold")
        for h in block.header:
            t.add_column(h, overflow="fold")  # a long name wraps, never cut
        for r in block.rows:
            t.add_row(*(str(c) for c in r))
        return t
    if isinstance(block, Figure):
        return RichText(f"[figure] {block.caption}" + (f": {block.path}" if block.path else ""))
    raise TypeError(block)


def print_lesson(lesson: Lesson, console: Console) -> None:
    console.rule(f"[bold]{lesson.title}")
    for block in lesson.blocks:
        console.print(_rich_block(block))
        console.print()


def _html_grid(title, values, digits):
    rows = "".join("<tr>" + "".join(f"<td>{H.esc(fmt(v, digits))}</td>" for v in row) + "</tr>" for row in values)
    return (f'<div class="grid"><div class="note">{H.esc(title)}</div>'
            f"<table><tbody>{rows}</tbody></table></div>")


def _html_block(block) -> str:
    if isinstance(block, list):
        return '<div class="row">' + "".join(_html_block(b) for b in block) + "</div>"
    if isinstance(block, Text):
        return f"<p>{H.esc(block.text)}</p>"
    if isinstance(block, Grid):
        head = f'<div class="note">{H.esc(block.title)}</div>' if block.values.ndim == 3 else ""
        return head + '<div class="row">' + "".join(_html_grid(t, v, block.digits) for t, v in _channels(block)) + "</div>"
    if isinstance(block, Table):
        head = f'<div class="note">{H.esc(block.title)}</div>' if block.title else ""
        return head + H.table(block.header, block.rows)
    if isinstance(block, Figure):
        return H.img(block.png, block.caption, block.caption)
    raise TypeError(block)


EXTRA_CSS = ("<style>.row{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}"
             ".grid table td{min-width:2.2em}</style>")


def lesson_body(lesson: Lesson) -> str:
    """The lesson's blocks as an HTML fragment (the page's body; also its notebook display)."""
    return "".join(_html_block(b) for b in lesson.blocks)


def lesson_html(lesson: Lesson) -> str:
    body = lesson_body(lesson)
    page = H.page(f"seethrough lesson: {lesson.title}", H.section(lesson.title, body, anchor=lesson.name),
                  subtitle="Every number on this page was computed by seethrough's NumPy engine.")
    return page.replace("</head>", EXTRA_CSS + "</head>", 1)


def notebook_html(lesson) -> str:
    """A lesson's blocks (text, number grids, tables, figures), as its HTML page draws them."""
    from ..htmlparts import esc, wrap

    return wrap(f"<h3>Lesson: {esc(lesson.title)}</h3>", lesson_body(lesson))

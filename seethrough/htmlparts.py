"""Small HTML pieces shared by the report, the notebook display and the lessons' pages.

Escaping, tables and images embedded as base64 PNG; and the notebook fragment's wrapper
(styles scoped under one class, ``st-out``, so a notebook is not restyled around it).
"""

from __future__ import annotations

import base64
import html

def esc(text) -> str:
    return html.escape(str(text))


def img_src(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_table(header: list[str], rows: list[list[str]], cell_class=None) -> str:
    """Like :func:`table` but the cells are HTML already (escape them yourself);
    ``cell_class(i, j)`` may return a class name for body cell (i, j)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cells = []
        for j, c in enumerate(r):
            cls = cell_class(i, j) if cell_class else None
            cells.append(f'<td class="{cls}">{c}</td>' if cls else f"<td>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# ---------------------------------------------------------------------------------- notebook fragments
CSS = (".st-out{font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#222}"
       ".st-out table{border-collapse:collapse;margin:.4em 0}"
       ".st-out td,.st-out th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
       ".st-out th{background:#f4f4f4}.st-out td:first-child,.st-out th:first-child{text-align:left}"
       ".st-out .note{color:#555;font-size:.9em}.st-out img{max-width:100%}"
       ".st-out img.px{image-rendering:pixelated}.st-out .row{display:flex;flex-wrap:wrap;gap:1.5em;"
       "align-items:flex-start}.st-out h3{margin:.3em 0}.st-out .grid table td{min-width:2.2em}")


def wrap(*parts: str) -> str:
    return f'<div class="st-out"><style>{CSS}</style>{"".join(parts)}</div>'


def image(png: bytes, alt: str, pixelated: bool = False, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    cls = ' class="px"' if pixelated else ""
    return f'<img{cls}{w} alt="{esc(alt)}" src="{img_src(png)}">'



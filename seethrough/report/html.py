"""A self-contained HTML page: figures embedded as base64 PNG, no outside files."""

from __future__ import annotations

import base64

from ..htmlparts import esc, html_table, img_src, table  # noqa: F401  (the report uses them by these names)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%} .note{color:#555;font-size:.92em} figure{margin:1em 0} figcaption{color:#555;font-size:.9em}
.thumbs img{width:40px;height:40px;image-rendering:pixelated;margin:1px;border:1px solid #ddd}
td.diag{background:#eef6ee} td a{text-decoration:none}
details{margin:.4em 0} summary{cursor:pointer;font-weight:600}
figure.thumb{display:inline-block;margin:2px;text-align:center}
figure.thumb figcaption{font-size:.7em;max-width:64px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
"""


def img(png: bytes, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    a = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{a}><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def page(title: str, *sections: str, subtitle: str = "") -> str:
    sub = f'<p class="note">{esc(subtitle)}</p>' if subtitle else ""
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{sub}{''.join(sections)}</body></html>")

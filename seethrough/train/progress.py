"""The training progress bar inside a Jupyter notebook.

rich's live bar needs ipywidgets in a notebook and shows nothing without it, so inside a kernel
``fit`` shows :class:`NotebookProgress`: one HTML output created with a ``display_id`` and updated
in place, which every front end shows and the saved notebook keeps. In a terminal the loop's own
rich bar is used (:func:`progress_bar` chooses).
"""

from __future__ import annotations

import time

import numpy as np


def in_notebook() -> bool:
    """True inside a Jupyter kernel (rich's test: the IPython shell is a ZMQ one)."""
    from rich.console import Console

    return Console().is_jupyter


def bar_html(fraction: float, text: str) -> str:
    from ..htmlparts import esc

    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div class="st-out"><div style="display:flex;gap:1em;align-items:center;font-family:monospace">'
            f'<div style="width:240px;height:12px;background:#e5e5e5;border-radius:3px">'
            f'<div style="width:{pct:.1f}%;height:100%;background:#3a7bd5;border-radius:3px"></div></div>'
            f"<span>{esc(text)}</span></div></div>")


class NotebookProgress:
    """The training progress bar as one HTML output that is updated in place.

    rich's own bar needs ipywidgets in a notebook and shows nothing without it; an updated
    display (``display_id``) works in every front end and is kept in the saved notebook.
    Same interface as the training loop's terminal bar: a context manager with
    ``update(epoch, step, steps_per_epoch, loss=, acc=, ips=)``, ``epoch_done(row, done, left)``
    and ``log(text)``.
    """

    def __init__(self, epochs: int, steps: int, every: float = 0.25):
        self.epochs, self.steps, self.every = epochs, max(1, steps), every
        self.handle, self.last, self.t0, self.text = None, 0.0, time.perf_counter(), ""
        self.bar = self  # the loop asks ``bar.bar is not None`` before computing the numbers to show

    def __enter__(self):
        from IPython.display import HTML, display

        self.handle = display(HTML(bar_html(0, f"epoch 0/{self.epochs}")), display_id=True)
        return self

    def __exit__(self, *exc):
        self._show(self.done, force=True)

    done = 0  # steps finished

    def update(self, epoch, step, steps_per_epoch, loss=0.0, acc=0.0, ips=0.0, **_):
        self.done = epoch * steps_per_epoch + step
        self.text = (f"epoch {epoch + 1}/{self.epochs}  loss {loss:.4f}  acc {acc:.1%}  {ips:,.0f} img/s")
        self._show(self.done)

    def _show(self, done, force: bool = False):
        now = time.perf_counter()
        if self.handle is None or (not force and now - self.last < self.every):
            return
        self.last = now
        from IPython.display import HTML

        elapsed = now - self.t0
        self.handle.update(HTML(bar_html(done / self.steps, f"{self.text}  {elapsed:.1f} s")))

    def epoch_done(self, row: dict, done: int, left: int):
        """One plain line for a finished epoch, as in the terminal: its metrics and the time left."""
        per_epoch = (time.perf_counter() - self.t0) / max(1, done)
        self.log(epoch_line(row, self.epochs, left * per_epoch if left else None))

    def log(self, text: str):
        print(text)


def progress_bar(enabled: bool, epochs: int, steps: int, terminal):
    """The bar training shows: :class:`NotebookProgress` in a notebook, else ``terminal(...)``."""
    if enabled and in_notebook():
        return NotebookProgress(epochs, steps)
    return terminal(enabled, epochs, steps)


# ---------------------------------------------------------------------- the epoch's line (terminal and notebook)
def epoch_line(row: dict, epochs: int, seconds_left: float | None) -> str:
    """The line printed after an epoch: ``epoch 3/10  train_loss ...  ~12 s left`` (the time left when given)."""
    rest = format_row({k: v for k, v in row.items() if k != "epoch"})
    return f"epoch {row['epoch']}/{epochs}  {rest}" + (f"  ~{seconds_left:.0f} s left" if seconds_left is not None else "")


def format_row(row: dict) -> str:
    """A metrics row in plain numbers: ``epoch 3/10  train_loss 0.4123  train_acc 88.20 %  ...``."""
    parts = []
    for k, v in row.items():
        if k.endswith("_acc"):
            parts.append(f"{k} {v:.2%}")
        elif k == "images_per_s":
            parts.append(f"{v:,.0f} img/s")
        elif k == "seconds":
            parts.append(f"{v:.1f} s")
        elif k == "lr":  # positional, 4 significant digits: 0.00000007594, not 7.594e-08
            parts.append(f"lr {np.format_float_positional(v, precision=4, fractional=False, trim='-')}")
        elif isinstance(v, float):
            parts.append(f"{k} {v:.4f}")
        else:
            parts.append(f"{k} {v}")
    return "  ".join(parts)

"""Worked examples of the arithmetic of image recognition, computed by the NumPy engine.

``run_lesson(name, **options)`` returns a :class:`~.base.Lesson` (text, number grids,
tables, figures); :mod:`.render` prints it with rich or writes it as an HTML page.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import SeethroughError
from .base import Lesson
from .render import notebook_html

# In a notebook a lesson draws itself as its page (set here, above both modules: render reads base's blocks).
Lesson._repr_html_ = notebook_html

LESSONS: dict[str, tuple[str, str]] = {  # name -> (module, one-line summary)
    "padding": ("padding", "a ring of zeros: a 5x5 image becomes 7x7"),
    "convolution": ("convolution", "a 3x3 filter over a 5x5 binary image, every dot product shown"),
    "relu": ("relu", "negative responses of a feature map become 0"),
    "pooling": ("pooling", "2x2 max and average pooling, window by window"),
    "stride": ("stride", "a 4x4x3 image, a 2x2 filter per channel, max pool, a fully connected layer"),
    "receptive-field": ("receptive_field", "how much of the image each layer sees (--model, --input)"),
    "logistic-regression": ("logistic_regression", "sigmoid, loss and one gradient step; --data catvnoncat "
                            "runs the classic exercise"),
    "backprop": ("backprop", "one step of a tiny CNN, every gradient beside PyTorch autograd's"),
}


def list_lessons() -> list[str]:
    return list(LESSONS)


def run_lesson(name: str, **options) -> Lesson:
    if name not in LESSONS:
        raise SeethroughError(f"unknown lesson {name!r}; expected one of {', '.join(LESSONS)}")
    module = import_module(f".{LESSONS[name][0]}", __name__)
    return module.run(**{k: v for k, v in options.items() if v is not None})


__all__ = ["LESSONS", "Lesson", "list_lessons", "run_lesson"]

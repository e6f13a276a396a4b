"""Experiments that test claims about image classifiers on your own data.

- :mod:`.learning_curve`: test accuracy against the number of training images, several models
  and seeds ("a CNN needs a large data set": where does it overtake logistic regression?);
- :mod:`.invariance`: accuracy as the test images are shifted, rotated, scaled and made noisy
  ("CNNs do not encode position and orientation").

Each returns its table as plain data (a list of dicts); :mod:`seethrough.viz.experiments` draws
it, and :func:`save_result` writes both into ``<folder>/experiments/`` where ``seethrough report``
finds them.
"""

from __future__ import annotations

from pathlib import Path

from .. import _io
from ..run import RunFolder


def save_result(folder, name: str, result: dict, png: bytes) -> tuple[Path, Path]:
    """Write ``result`` as ``<folder>/experiments/<name>.json`` and the figure beside it (atomically)."""
    out = RunFolder(folder).experiments
    out.mkdir(parents=True, exist_ok=True)
    _io.write_json(out / f"{name}.json", result)
    _io.write_bytes(out / f"{name}.png", png)
    return out / f"{name}.json", out / f"{name}.png"


def load_results(folder) -> list[tuple[str, dict, Path | None]]:
    """Every experiment saved in ``folder``: (name, result, PNG path or None), sorted by name."""
    import json

    out = []
    for path in sorted(RunFolder(folder).experiments.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a broken file is left out of the report rather than breaking it
        png = path.with_suffix(".png")
        out.append((path.stem, result, png if png.is_file() else None))
    return out


__all__ = ["load_results", "save_result"]

"""The runs a server shows: loaded once at start, looked up by an id, never by a path.

Each run folder given to ``seethrough serve`` gets an id made from its folder name
(``logreg``, ``smallcnn``, a ``-2`` suffix when two share a name). Requests name a run
by that id only, so no part of a request is ever joined to a filesystem path.

A run's test images come from the data set its model.json names, loaded with
:func:`seethrough.run.load_test_split` (as ``evaluate`` and ``report`` load them) the first
time they are asked for and kept in memory.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path


from ..data import ImageDataset
from ..errors import DataError, RunError, SeethroughError
from ..models import count_params, describe, has_conv
from ..run import load_test_split
from ..trained import TrainedModel


@dataclass
class Run:
    id: str
    folder: Path
    model: TrainedModel
    lock: threading.Lock = field(default_factory=threading.Lock)  # one forward/backward at a time
    _test: ImageDataset | None = None
    _test_error: str | None = None

    @property
    def layers(self) -> list[dict]:
        return describe(self.model.spec, self.model.in_chw)

    def summary(self) -> dict:
        m = self.model
        h, w, c = m.input_shape
        kinds = [l.kind for l in m.spec]
        return {"id": self.id, "name": self.folder.name, "model": m.facts.model,
                "dataset": m.facts.dataset, "input_shape": [h, w, c], "class_names": m.class_names,
                "params": count_params(m.spec, m.in_chw), "n_layers": len(m.spec),
                "has_conv": has_conv(m.spec), "linear_weights": kinds[:2] == ["flatten", "linear"]}


class RunStore:
    """The runs given on the command line, by id, with their test images loaded on demand."""

    def __init__(self, folders, *, data_dir=None, device: str = "cpu"):
        folders = [Path(f) for f in folders]
        if not folders:
            raise RunError("give at least one run folder to serve")
        self.data_dir = data_dir
        self.runs: dict[str, Run] = {}
        for folder in folders:
            model = TrainedModel.load(folder, device=device)
            rid = _unique_id(_slug(folder.resolve().name), self.runs)
            self.runs[rid] = Run(rid, folder, model)
        self._data_lock = threading.Lock()

    def get(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise KeyError(run_id)
        return run

    def test_set(self, run: Run) -> ImageDataset:
        """The run's test split; raises DataError when its data cannot be found here."""
        with self._data_lock:
            if run._test is None and run._test_error is None:
                try:
                    run._test = self._load_test(run)
                except SeethroughError as exc:
                    run._test_error = str(exc)
            if run._test is None:
                raise DataError(f"run {run.id}: no test images ({run._test_error})")
            return run._test

    def _load_test(self, run: Run) -> ImageDataset:
        return load_test_split(run.model, data_dir=self.data_dir, download=False)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


def _unique_id(base: str, taken) -> str:
    rid, i = base, 2
    while rid in taken:
        rid, i = f"{base}-{i}", i + 1
    return rid

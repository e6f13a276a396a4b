"""The runs a server shows: loaded once at start, looked up by an id, never by a path.

Each run folder given to ``seethrough serve`` gets an id made from its folder name
(``logreg``, ``smallcnn``, a ``-2`` suffix when two share a name). Requests name a run
by that id only, so no part of a request is ever joined to a filesystem path.

A run's test images come from the data set its model.json names, loaded with
:func:`seethrough.run.load_test_split` (as ``evaluate`` and ``report`` load them) the first
time they are asked for and kept in memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path


from ..data import ImageDataset
from ..errors import DataError, RunError, SeethroughError
from ..models import count_params, describe, has_conv
from ..run import load_test_split, slug
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

    def __init__(self, folders, *, data_dir=None, device: str = "cpu", allow_empty: bool = False):
        folders = [Path(f) for f in folders]
        if not folders and not allow_empty:
            raise RunError("give at least one run folder to serve")
        self.data_dir = data_dir
        self.device = device
        self.runs: dict[str, Run] = {}
        self._data_lock = threading.Lock()
        for folder in folders:
            self.add(folder)

    def add(self, folder) -> Run:
        """Load one more run folder (e.g. one the page just trained) and serve it; its :class:`Run`."""
        folder = Path(folder)
        for run in self.runs.values():
            if run.folder.resolve() == folder.resolve():  # named twice (on the command line and in the workspace)
                return run
        model = TrainedModel.load(folder, device=self.device)
        with self._data_lock:
            run = Run(_unique_id(slug(folder.resolve().name, "run"), self.runs), folder, model)
            self.runs = {**self.runs, run.id: run}  # a new dict: a request iterating the old one is unharmed
        return run

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


def _unique_id(base: str, taken) -> str:
    rid, i = base, 2
    while rid in taken:
        rid, i = f"{base}-{i}", i + 1
    return rid

"""The runs a server shows: loaded once at start, looked up by an id, never by a path.

Each run folder given to ``seethrough serve`` gets an id made from its folder name
(``logreg``, ``smallcnn``, a ``-2`` suffix when two share a name). Requests name a run
by that id only, so no part of a request is ever joined to a filesystem path.

A run's test images come from the data set its model.json names (``data``, else
``dataset``), loaded with :func:`seethrough.data.load_splits` the first time they are
asked for and kept in memory.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import ImageDataset, load_splits
from ..errors import DataError, RunError, SeethroughError
from ..models import count_params, describe
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

    @property
    def source(self) -> str | None:
        """The data set name or folder the run was trained on, as model.json records it."""
        meta = self.model.meta
        src = meta.get("data") or meta.get("dataset")
        if isinstance(src, str) and src.startswith("folder:"):
            src = src[len("folder:"):]
        return src if isinstance(src, str) and src else None

    def summary(self) -> dict:
        m = self.model
        h, w, c = m.input_shape
        kinds = [l.kind for l in m.spec]
        return {"id": self.id, "name": self.folder.name, "model": m.meta.get("model", "custom"),
                "dataset": m.meta.get("dataset"), "input_shape": [h, w, c], "class_names": m.class_names,
                "params": count_params(m.spec, m.in_chw), "n_layers": len(m.spec),
                "has_conv": "conv" in kinds, "linear_weights": kinds[:2] == ["flatten", "linear"]}


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
            run = Run(_unique_id(_slug(folder.resolve().name), self.runs), folder, model)
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
        source = run.source
        if source is None:
            raise DataError("model.json does not say which data set it was trained on")
        meta = run.model.meta
        size = (meta.get("data_options") or {}).get("size")
        seed = (meta.get("train") or {}).get("seed", 0)
        test = load_splits(source, data_dir=self.data_dir, size=size, seed=seed, download=False)["test"]
        if test.image_shape != run.model.input_shape:  # e.g. a folder loaded at another size
            test = ImageDataset(np.stack([run.model.to_input(im) for im in test.images]), test.labels,
                                test.class_names, test.name)
        return test


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


def _unique_id(base: str, taken) -> str:
    rid, i = base, 2
    while rid in taken:
        rid, i = f"{base}-{i}", i + 1
    return rid

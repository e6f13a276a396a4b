"""A run folder, and the one module that knows what is in it.

Every file name of a run folder is written here once, with its reader and writer:

    runs/<name>/
      model.json                spec, class names, input shape, preprocessing, what it was trained on
      model.safetensors         weights (never pickle)
      metrics.jsonl             one line per epoch
      checkpoint/state.safetensors   what --resume continues from
      evaluation.json           test-split metrics      (evaluation-<data>.json: another data set's)
      confusion.png             its confusion matrix     (confusion-<data>.png)
      snapshots/                kernels and feature maps per epoch (train --snapshots)
      explain/                  seethrough explain's PNGs
      report.html               seethrough report

:class:`RunFacts` reads what model.json records about where the run came from (data source,
size, seed) so that no caller looks up ``meta[...]`` keys itself, and :func:`load_test_split`
is the one way to get a run's test images back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _io
from .errors import RunError

MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint/state.safetensors"
EVALUATION = "evaluation.json"
CONFUSION = "confusion.png"
SNAPSHOTS = "snapshots"
EXPLAIN = "explain"
REPORT = "report.html"
EXPERIMENTS = "experiments"  # seethrough experiment ...: NAME.json (the table) and NAME.png (its figure)


def slug(text: str, fallback: str = "data") -> str:
    """``text`` as a safe file or id name: runs of other characters become one ``-``; ``fallback`` if nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or fallback


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder, and the readers and writers of its small files."""

    path: Path

    def __init__(self, path):
        object.__setattr__(self, "path", Path(path))

    # ------------------------------------------------------------------ names
    @property
    def model_json(self) -> Path:
        return self.path / MODEL_JSON

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def experiments(self) -> Path:
        return self.path / EXPERIMENTS

    @property
    def snapshots(self) -> Path:
        return self.path / SNAPSHOTS

    @property
    def explain(self) -> Path:
        return self.path / EXPLAIN

    @property
    def report(self) -> Path:
        return self.path / REPORT

    def evaluation(self, data: str | None = None) -> Path:
        """evaluation.json for the run's own test split, evaluation-<data>.json for another data set's."""
        return self.path / (EVALUATION if data is None else f"evaluation-{slug(Path(str(data)).name)}.json")

    def confusion(self, data: str | None = None) -> Path:
        return self.path / (CONFUSION if data is None else f"confusion-{slug(Path(str(data)).name)}.png")

    # ------------------------------------------------------------------ state
    def is_trained(self) -> bool:
        """Whether a model has been saved here (a run that other commands can read)."""
        return self.model_json.is_file() and self.weights.is_file()

    def is_started(self) -> bool:
        """Whether anything of a run is here: a model or a checkpoint to resume."""
        return self.model_json.is_file() or self.checkpoint.is_file()

    def remove_temporary(self) -> list[Path]:
        """Delete the temporary files a killed atomic write left behind (``.NAME.*.tmp``); return them."""
        found = [p for d in (self.path, self.checkpoint.parent, self.snapshots) if d.is_dir()
                 for p in d.glob(".*.tmp")]
        for p in found:
            p.unlink(missing_ok=True)
        return found

    # ------------------------------------------------------------------ files
    def write_metrics(self, history: list[dict]) -> None:
        _io.write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in history))

    def read_metrics(self) -> list[dict]:
        if not self.metrics.is_file():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def write_evaluation(self, ev, data: str | None = None) -> tuple[Path, Path]:
        """evaluation.json and confusion.png of ``ev`` (another data set's beside them: ``data``)."""
        from .viz import confusion_figure, save_png

        title = f"{self.path.name}: " + ("test split" if data is None else f"{data} test split")
        _io.write_json(self.evaluation(data), ev.to_json())
        png = save_png(confusion_figure(ev.confusion, ev.class_names, title), self.confusion(data))
        return self.evaluation(data), png

    def read_model_json(self) -> dict:
        """model.json as a dict, checked to be a seethrough run of this format version; RunError if not."""
        from .__version__ import __version__

        path = self.model_json
        if not path.is_file():
            raise RunError(f"{path}: missing; expected a run folder written by 'seethrough train'")
        try:
            info = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise RunError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(info, dict) or info.get("format") != "seethrough-run":
            raise RunError(f"{path}: not a seethrough model.json")
        version = info.get("format_version")
        if version != FORMAT_VERSION:
            raise RunError(f"{path}: format version {version} is not supported by seethrough "
                           f"{__version__} (expected {FORMAT_VERSION}); retrain or use a matching version")
        missing = CORE_KEYS - {"created"} - set(info)
        if missing:
            raise RunError(f"{path}: missing keys {', '.join(sorted(missing))}")
        return info


FORMAT_VERSION = 1
CORE_KEYS = {"format", "format_version", "seethrough_version", "spec", "input_shape",
             "class_names", "preprocess", "created"}


def new_run_dir(out, name: str) -> tuple[Path, bool]:
    """(folder, renamed): ``out/name``, or ``out/name-2``, ``-3`` ... when a run is already there.

    A folder holding no model and no checkpoint (a run killed before its first epoch ended)
    is reused rather than skipped.
    """
    path, i = Path(out) / name, 2
    while RunFolder(path).is_started():
        path, i = Path(out) / f"{name}-{i}", i + 1
    return path, i > 2


def new_folder(path) -> Path:
    """``path`` if it is missing or empty, else the first of ``path-2``, ``path-3`` ... that is."""
    path = Path(path)
    candidate, i = path, 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate, i = path.with_name(f"{path.name}-{i}"), i + 1
    return candidate


# ---------------------------------------------------------------------- what model.json records
@dataclass(frozen=True)
class RunFacts:
    """What a run's model.json records about where it came from (read from ``TrainedModel.meta``)."""

    model: str             # the model's name ("custom" for a spec given as a list)
    dataset: str | None    # the training set's name, e.g. "digits" or "folder:/photos"
    data: str | None       # what to load again for its test split: a data set name or a folder path
    size: str | None       # image folders: the --size the images were resized to
    seed: int              # the seed of the weights, the shuffling and the splits
    recipe: str | None

    @classmethod
    def of(cls, meta: dict) -> "RunFacts":
        data = meta.get("data") or meta.get("dataset")
        if isinstance(data, str) and data.startswith("folder:"):
            data = data[len("folder:"):]
        train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
        options = meta.get("data_options") if isinstance(meta.get("data_options"), dict) else {}
        seed = train.get("seed", 0)
        return cls(model=str(meta.get("model", "custom")), dataset=meta.get("dataset"),
                   data=data if isinstance(data, str) and data else None,
                   size=options.get("size"), seed=seed if isinstance(seed, int) else 0,
                   recipe=meta.get("recipe"))


def load_test_split(model, data=None, data_dir=None, download: bool = True):
    """The test split the run was trained beside (or ``data``'s), converted to the model's input size.

    When the images had to be converted, ``test.info["resized_from"]`` holds their (H, W, C).
    """
    from .data import ImageDataset, load_splits
    from .errors import SeethroughError

    facts = RunFacts.of(model.meta)
    source = data or facts.data
    if not source:
        raise RunError("model.json does not say which data the run was trained on; pass --data")
    test = load_splits(source, data_dir=data_dir, size=facts.size,
                       seed=facts.seed, download=download)["test"]
    if test.class_names != model.class_names:
        raise SeethroughError(f"{source}: classes {test.class_names} differ from the run's {model.class_names}")
    if test.image_shape != model.input_shape:
        shape = test.image_shape
        test = ImageDataset(np.stack([model.to_input(im) for im in test.images]), test.labels,
                            test.class_names, test.name, {**test.info, "resized_from": shape})
    return test

"""A decode cache for image folders: decode a folder once, memory-map it after.

Decoding 60,000 JPEGs takes tens of seconds; reading back the decoded uint8 arrays
takes well under one. ``cached_splits`` wraps a folder loader: the first call runs
it and stores every split as ``.npy`` files (images, labels) plus ``index.json``
(class names, file list, and the warnings the loader gave about unreadable files);
later calls memory-map the arrays and repeat those warnings.

An entry is keyed on the folder's absolute path, the relative name, size and
modification time of every file in it, and the loading options (size, split
fraction, seed). Any change to a file gives another key, so the folder is decoded
again and the stale entry is removed. Entries are written into a temporary folder
that is renamed into place, so a killed run never leaves a half-written entry.

Where: ``$SEETHROUGH_CACHE`` if set, else ``<user cache dir>/decoded``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError, SkippedImageWarning
from .dataset import ImageDataset

CACHE_VERSION = 1  # bump when the decoding rule or the entry layout changes


def cache_root() -> Path:
    if os.environ.get("SEETHROUGH_CACHE"):
        return Path(os.environ["SEETHROUGH_CACHE"])
    from .download import cache_dir

    return cache_dir() / "decoded"


def _walk(folder: str, rel: str, out: list) -> None:
    """Append (relative name, size, mtime_ns) of every non-hidden file under ``folder``, sorted."""
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for e in entries:
        name = f"{rel}/{e.name}" if rel else e.name
        if e.is_dir():
            _walk(e.path, name, out)
        elif e.is_file():
            st = e.stat()
            out.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}")


def folder_key(root: Path, options: dict) -> tuple[str, str]:
    """(folder id, content id): hex digests of the folder's path and of its files plus ``options``."""
    root = Path(root).resolve()
    listing: list[str] = []
    _walk(str(root), "", listing)
    where = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    h = hashlib.sha256(json.dumps([CACHE_VERSION, str(root), options], sort_keys=True).encode())
    h.update("\n".join(listing).encode())
    return where, h.hexdigest()[:24]


def _save(entry: Path, splits: dict[str, ImageDataset], messages: list[str]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        index = {"version": CACHE_VERSION, "warnings": messages, "splits": {}}
        for split, ds in splits.items():
            np.save(tmp / f"{split}.images.npy", np.ascontiguousarray(ds.images))
            np.save(tmp / f"{split}.labels.npy", ds.labels)
            index["splits"][split] = {"class_names": ds.class_names, "name": ds.name, "info": ds.info}
        (tmp / "index.json").write_text(json.dumps(index))
        os.replace(tmp, entry)  # atomic: the entry appears complete or not at all
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (entry / "index.json").is_file():
            raise


def _load(entry: Path) -> tuple[dict[str, ImageDataset], list[str]] | None:
    try:
        index = json.loads((entry / "index.json").read_text())
        if index.get("version") != CACHE_VERSION:
            return None
        out = {}
        for split, meta in index["splits"].items():
            # copy-on-write map: pages are read lazily and shared; writes stay private
            images = np.load(entry / f"{split}.images.npy", mmap_mode="c")
            labels = np.load(entry / f"{split}.labels.npy")
            out[split] = ImageDataset(images, labels, meta["class_names"], meta["name"], meta["info"])
        return out, index["warnings"]
    except (OSError, ValueError, KeyError, DataError):
        return None  # missing or damaged: decode again


def _replay(messages: list[str], strict: bool) -> None:
    """Repeat the loader's warnings about skipped files; with ``strict`` the first one raises."""
    for msg in messages:
        if strict and msg.startswith("skipped "):
            raise DataError(msg[len("skipped "):] + " (remove it, or run without --strict to skip it)")
        warnings.warn(msg, SkippedImageWarning, stacklevel=4)


def cached_splits(loader, root, *, size=None, strict: bool = False, test_fraction: float = 0.2,
                  seed: int = 0) -> dict[str, ImageDataset]:
    """``loader(root, size=..., strict=..., test_fraction=..., seed=...)``, decoded once and cached."""
    root = Path(root).expanduser()
    if not root.is_dir():  # let the loader name the problem
        return loader(root, size=size, strict=strict, test_fraction=test_fraction, seed=seed)
    options = {"size": None if size is None else str(size), "test_fraction": test_fraction, "seed": seed}
    where, key = folder_key(root, options)
    entry = cache_root() / f"{where}-{key}"
    hit = _load(entry) if (entry / "index.json").is_file() else None
    if hit is not None:
        splits, messages = hit
        _replay(messages, strict)
        return splits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedImageWarning)
        splits = loader(root, size=size, strict=strict, test_fraction=test_fraction, seed=seed)
    messages = []
    for w in caught:
        if issubclass(w.category, SkippedImageWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    try:
        _save(entry, splits, messages)
        for old in entry.parent.glob(f"{where}-*"):  # the folder changed: drop its stale entries
            if old != entry:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        warnings.warn(f"could not write the decode cache {entry}: {exc}", RuntimeWarning, stacklevel=3)
    _replay(messages, strict=False)
    return splits

"""A folder of the user's own images: one sub-folder per class.

Two layouts are understood:

- ``photos/<class>/<image>``: split into train and test by the seed
  (``test_fraction`` held out, stratified by class);
- ``photos/train/<class>/...`` with ``photos/test/<class>/...`` (or ``val/``):
  taken as already split.

Any file Pillow reads is an image. Every image is converted to one mode and one
size by the rule in :mod:`seethrough.data.images`. The size is ``size`` when given,
else the most common size among the images. The mode is grayscale when every image
is grayscale, else RGB. A file that cannot be read is named in a warning and
skipped, or raises with ``strict=True``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError, SkippedImageWarning
from .dataset import ImageDataset, split_indices
from .images import image_to_array, open_image

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _is_hidden(p: Path) -> bool:
    return p.name.startswith(".")


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))


def list_images(root: Path) -> tuple[list[Path], list[str]]:
    """All files under ``root/<class>/`` (any depth) and the sorted class names."""
    classes = class_folders(root)
    files = []
    for c in classes:
        files += sorted(p for p in c.rglob("*") if p.is_file() and not _is_hidden(p))
    return files, [c.name for c in classes]


def _skip(path: Path, why: str, strict: bool) -> None:
    msg = f"{path}: {why}"
    if strict:
        raise DataError(msg + " (remove it, or run without --strict to skip it)")
    warnings.warn(f"skipped {msg}", SkippedImageWarning, stacklevel=3)


def _header(path: Path):
    """(width, height, mode) from the file header, or None if it is no image."""
    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], img.mode
    except Exception:
        return None


def _split_root(root: Path) -> dict[str, Path] | None:
    test = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test is not None:
        return {"train": root / "train", "test": test}
    return None


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().replace("x", " ").split()
        try:
            size = tuple(int(p) for p in parts)
        except ValueError:
            raise DataError(f"--size must be N or HxW, got {size!r}") from None
    if isinstance(size, int):
        size = (size, size)
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise DataError(f"--size must be N or HxW with positive numbers, got {size!r}")
    return int(size[0]), int(size[1])


def _decode_one(p, shape):
    try:
        return image_to_array(open_image(p), shape)
    except DataError as exc:
        return exc


def _parallel_map(fn, paths: list[Path], *args) -> list:
    """``[fn(p, *args) for p in paths]`` in a process pool (decoding holds the GIL too often for threads)."""
    workers = min(8, os.cpu_count() or 1)
    if workers == 1 or len(paths) < 256:
        return [fn(p, *args) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, paths, *([a] * len(paths) for a in args),
                             chunksize=max(16, len(paths) // (8 * workers))))


def _decode(paths: list[Path], shape, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` in parallel into uint8 (N, H, W, C); returns (images, kept mask)."""

    results = _parallel_map(_decode_one, paths, shape)
    keep = np.array([not isinstance(r, Exception) for r in results], bool)
    for p, r in zip(paths, results):
        if isinstance(r, Exception):
            _skip(p, str(r).split(": ", 1)[-1], strict)
    if not keep.any():
        return np.zeros((0, *shape), np.uint8), keep
    return np.stack([r for r in results if not isinstance(r, Exception)]), keep


def load_folder_splits(path, size=None, strict: bool = False, test_fraction: float = 0.2,
                       seed: int = 0, cache: bool = True, **_) -> dict[str, ImageDataset]:
    """Load a class-per-folder tree as ``{"train": ..., "test": ...}``.

    Decoded once, then memory-mapped from the decode cache (:mod:`seethrough.data.cache`)
    until a file in the folder changes; ``cache=False`` always decodes.
    """
    if cache:
        from .cache import cached_splits

        return cached_splits(_load_folder_splits, path, size=size, strict=strict,
                             test_fraction=test_fraction, seed=seed)
    return _load_folder_splits(path, size=size, strict=strict, test_fraction=test_fraction, seed=seed)


def _load_folder_splits(path, size=None, strict: bool = False, test_fraction: float = 0.2,
                        seed: int = 0) -> dict[str, ImageDataset]:
    """Decode a class-per-folder tree, without the cache."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder with one sub-folder per class")
    splits = _split_root(root) or {"all": root}

    listed = {}
    for split, folder in splits.items():
        files, classes = list_images(folder)
        if not classes:
            raise DataError(f"{folder}: empty folder; expected one sub-folder per class, each holding images")
        listed[split] = (files, classes)
    classes = listed[next(iter(listed))][1]
    for split, (_, cls) in listed.items():
        if cls != classes:
            raise DataError(f"{splits[split]}: class folders {cls} differ from {classes} in the other split")

    # Read headers once to pick the common size and mode; unreadable files are skipped here.
    headers = {}
    for split, (files, _) in listed.items():
        ok = []
        for p, h in zip(files, _parallel_map(_header, files)):
            if h is None or h[0] == 0 or h[1] == 0:
                _skip(p, "not a readable image" if p.stat().st_size else "empty file (0 bytes)", strict)
            else:
                ok.append((p, h))
        headers[split] = ok
    every = [h for ok in headers.values() for _, h in ok]
    by_class = Counter(p.relative_to(splits[s]).parts[0] for s, ok in headers.items() for p, _ in ok)
    usable = [c for c in classes if by_class[c] > 0]
    if len(usable) < 2:
        raise DataError(f"{root}: found images for {len(usable)} class(es) ({', '.join(usable) or 'none'}); "
                        "expected at least two sub-folders of images, one per class")
    for c in classes:
        if c not in usable:
            warnings.warn(f"class folder {c!r} has no readable images; left out", SkippedImageWarning, 2)
    classes = usable
    hw = _parse_size(size) or Counter((h, w) for w, h, _ in every).most_common(1)[0][0]
    channels = 1 if all(m in GRAY_MODES for _, _, m in every) else 3
    shape = (hw[0], hw[1], channels)

    out = {}
    for split, ok in headers.items():
        paths = [p for p, _ in ok]
        labels = np.array([classes.index(p.relative_to(splits[split]).parts[0]) for p in paths], np.int64)
        images, keep = _decode(paths, shape, strict)
        ds = ImageDataset(images, labels[keep], list(classes), f"folder:{root}",
                          {"files": [str(p) for p, k in zip(paths, keep) if k]})
        out[split] = ds
    if "all" in out:  # not pre-split: hold out a stratified test part
        full = out.pop("all")
        files = np.array(full.info["files"])
        for split, idx in zip(("train", "test"), split_indices(full.labels, test_fraction, seed)):
            out[split] = full.subset(idx)
            out[split].info = {"files": files[idx].tolist()}
    return out

"""A folder of the user's own images: one sub-folder per class.

Two layouts are understood:

- ``photos/<class>/<image>``: split into train and test by the seed
  (``test_fraction`` held out, stratified by class);
- ``photos/train/<class>/...`` with ``photos/test/<class>/...`` (or ``val/``):
  taken as already split.

Any file Pillow reads is an image. Every image is converted to one mode and one
size by the rule in :mod:`seethrough.data.images`. The size is ``size`` when given,
else the most common size among the images. The mode is grayscale when every image
is grayscale, else RGB; files that turn out unreadable have no say in either. A file
that cannot be read is named in a warning and skipped, or raises with ``strict=True``.

Which files are seen is the walk of :mod:`seethrough.data.walk` (hidden names ignored,
symbolic links followed without looping, only regular files, UTF-8 names), the same walk
the decode cache keys on. The decoded arrays must fit in half of the machine's memory;
a ``size`` that would not is refused before anything is decoded.
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
from .images import image_to_array, open_image, quiet
from .walk import shown, subfolders, valid_name, walk

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
MEMORY_FRACTION = 0.5  # the decoded arrays may take at most this part of the machine's memory

__all__ = ["SkippedImageWarning", "load_folder_splits", "list_images"]


def _skip(path, why: str, strict: bool) -> None:
    msg = f"{shown(path)}: {why}"
    if strict:
        raise DataError(msg + " (remove it, or run without --strict to skip it)")
    warnings.warn(f"skipped {msg}", SkippedImageWarning, stacklevel=3)


def list_images(root: Path, strict: bool = False) -> tuple[list[tuple[Path, os.stat_result]], list[str]]:
    """Every file under ``root/<class>/`` (any depth), with its stat, and the sorted class names.

    What the walk leaves out (loops, FIFOs, names that are not UTF-8, ...) is named in a warning.
    """
    classes, problems = subfolders(root)
    files = []
    for c in classes:
        listing = walk(c, above=(root,))
        files += [(Path(p), st) for p, st in listing.files]
        problems += listing.problems
    for where, why in problems:
        _skip(where, why, strict)
    return files, [c.name for c in classes]


def _header(path: Path):
    """(width, height, mode) from the file header, or None if it is no image."""
    try:
        with quiet(), Image.open(path) as img:
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
    if not isinstance(size, (tuple, list)) or not all(isinstance(v, int) for v in size):
        raise DataError(f"--size must be N or HxW, got {size!r}")
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise DataError(f"--size must be N or HxW with positive numbers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h * w > Image.MAX_IMAGE_PIXELS:
        raise DataError(f"--size {h}x{w} is {h * w:,} pixels per image; at most {Image.MAX_IMAGE_PIXELS:,} "
                        "can be decoded")
    return h, w


def memory_bytes() -> int | None:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(root, n: int, shape: tuple[int, int, int], size) -> None:
    """Refuse, in one line, decoding ``n`` images of ``shape`` when they would not fit in memory."""
    need, have = n * shape[0] * shape[1] * shape[2], memory_bytes()
    if have is not None and need > MEMORY_FRACTION * have:
        hint = "choose a smaller --size" if size is not None else "give a smaller --size"
        raise DataError(f"{shown(root)}: {n:,} images of {shape[0]}x{shape[1]}x{shape[2]} need "
                        f"{need / 2**30:.1f} GiB decoded, more than {MEMORY_FRACTION:.0%} of this machine's "
                        f"{have / 2**30:.1f} GiB of memory; {hint}")


def _decode_one(p, shape):
    try:
        return image_to_array(open_image(p), shape)
    except DataError as exc:
        return exc
    except Exception as exc:  # a conversion Pillow gives up on (or memory it cannot get): name the file
        return DataError(f"{shown(p)}: cannot convert to {shape[0]}x{shape[1]}x{shape[2]} "
                         f"({type(exc).__name__}: {exc})")


def _parallel_map(fn, paths: list[Path], *args):
    """``fn(p, *args) for p in paths``, in order, in a process pool (decoding holds the GIL too often for threads)."""
    workers = min(8, os.cpu_count() or 1)
    if workers == 1 or len(paths) < 256:
        yield from (fn(p, *args) for p in paths)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(fn, paths, *([a] * len(paths) for a in args),
                            chunksize=max(16, len(paths) // (8 * workers)))


def _decode(paths: list[Path], shape) -> tuple[np.ndarray, list]:
    """Decode ``paths`` in parallel into uint8 (N, H, W, C), filled in place; returns (images, failures).

    ``images`` holds only the decoded ones, in order; ``failures`` is [(path, reason)].
    """
    images = np.empty((len(paths), *shape), np.uint8)  # (N, H, W, C): one copy in memory, not two
    failures, n = [], 0
    for p, r in zip(paths, _parallel_map(_decode_one, paths, shape)):
        if isinstance(r, Exception):
            failures.append((p, str(r).split(": ", 1)[-1]))
        else:
            images[n] = r
            n += 1
    return images[:n] if n < len(paths) else images, failures


def _choose(root, headers: dict, classes: list[str], splits: dict, size) -> tuple[list[str], tuple]:
    """The classes that have images and the (H, W, C) every image becomes, from the readable files only."""
    every = [h for ok in headers.values() for _, h in ok]
    by_class = Counter(p.relative_to(splits[s]).parts[0] for s, ok in headers.items() for p, _ in ok)
    usable = [c for c in classes if by_class[c] > 0]
    if len(usable) < 2:
        raise DataError(f"{shown(root)}: found images for {len(usable)} class(es) "
                        f"({', '.join(usable) or 'none'}); expected at least two sub-folders of images, one per class")
    hw = _parse_size(size) or Counter((h, w) for w, h, _ in every).most_common(1)[0][0]
    channels = 1 if all(m in GRAY_MODES for _, _, m in every) else 3
    return usable, (hw[0], hw[1], channels)


def load_folder_splits(path, size=None, strict: bool = False, test_fraction: float = 0.2,
                       seed: int = 0, cache: bool = True, **_) -> dict[str, ImageDataset]:
    """Load a class-per-folder tree as ``{"train": ..., "test": ...}``.

    Decoded once, then memory-mapped from the decode cache (:mod:`seethrough.data.cache`)
    until a file in the folder changes; ``cache=False`` always decodes and writes no cache.
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
    if not valid_name(str(root)):
        raise DataError(f"{shown(root)}: the folder's path is not valid UTF-8; rename it")
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder with one sub-folder per class")
    _parse_size(size)  # a bad --size is named before any file is read
    splits = _split_root(root) or {"all": root}

    listed = {}
    for split, folder in splits.items():
        files, classes = list_images(folder, strict)
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
        for (p, st), h in zip(files, _parallel_map(_header, [p for p, _ in files])):
            if h is None or h[0] == 0 or h[1] == 0:
                _skip(p, "not a readable image" if st.st_size else "empty file (0 bytes)", strict)
            else:
                ok.append((p, h))
        headers[split] = ok

    # Decode; a file whose header read but whose pixels do not is left out, and then has no say in
    # the size and mode: if they change without it, decode again (each round drops at least one file).
    decoded = {}
    while True:
        usable, shape = _choose(root, headers, classes, splits, size)
        check_memory(root, sum(len(ok) for ok in headers.values()), shape, size)
        failed = set()
        for split, ok in headers.items():
            if split in decoded and decoded[split][0] == shape:
                continue
            images, failures = _decode([p for p, _ in ok], shape)
            for p, why in failures:
                _skip(p, why, strict)
                failed.add(p)
            decoded[split] = (shape, images, [p for p, _ in ok if p not in failed])
        headers = {s: [(p, h) for p, h in ok if p not in failed] for s, ok in headers.items()}
        if not failed or _choose(root, headers, classes, splits, size) == (usable, shape):
            break
    usable, shape = _choose(root, headers, classes, splits, size)
    for c in classes:
        if c not in usable:
            warnings.warn(f"class folder {c!r} has no readable images; left out", SkippedImageWarning, 2)

    out = {}
    for split, (_, images, paths) in decoded.items():
        keep = np.array([p.relative_to(splits[split]).parts[0] in usable for p in paths], bool)
        labels = np.array([usable.index(p.relative_to(splits[split]).parts[0]) for p, k in zip(paths, keep) if k],
                          np.int64)
        images = images if keep.all() else images[keep]
        out[split] = ImageDataset(images, labels, list(usable), f"folder:{root}",
                                  {"files": [str(p) for p, k in zip(paths, keep) if k]})
    if "all" in out:  # not pre-split: hold out a stratified test part
        full = out.pop("all")
        files = np.array(full.info["files"])
        for split, idx in zip(("train", "test"), split_indices(full.labels, test_fraction, seed)):
            out[split] = full.subset(idx)
            out[split].info = {"files": files[idx].tolist()}
    return out

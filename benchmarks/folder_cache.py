"""First and second load of an image folder: decoding versus the memory-mapped decode cache.

    .venv/bin/python benchmarks/folder_cache.py [FOLDER]

FOLDER defaults to ../shared/datasets/cifar10-jpeg (60,000 JPEGs in class folders).
The cache goes to a fresh temporary folder, so the first load always decodes.

A second table prices the cache key (what every load, cached or not, pays first): the walk with
names, sizes and modification times only, against the key used, which adds a content digest of
each file (whole files up to 1 MiB, three 64 KiB samples of larger ones), so an edit that keeps
a file's size and time is noticed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"


def main(folder: Path) -> None:
    from seethrough.data.folder import load_folder_splits

    with tempfile.TemporaryDirectory() as cache:
        os.environ["SEETHROUGH_CACHE"] = cache
        rows = []
        for label in ("first load (decode + write cache)", "second load (memory-map)"):
            t0 = time.perf_counter()
            parts = load_folder_splits(folder)
            n = sum(len(p) for p in parts.values())
            rows.append((label, time.perf_counter() - t0))
        t0 = time.perf_counter()
        total = sum(int(p.images.sum(dtype="uint64")) for p in parts.values())  # touch every pixel
        rows.append(("read every pixel of the mapped arrays", time.perf_counter() - t0))
        size = sum(f.stat().st_size for f in Path(cache).rglob("*.npy"))
    print(f"folder: {folder} ({n:,} images, {parts['train'].image_shape}, cache {size / 1e6:.0f} MB, "
          f"{os.cpu_count()} CPUs; pixel sum {total})")
    print(f"{'step':<40} {'seconds':>8}")
    for label, sec in rows:
        print(f"{label:<40} {sec:8.2f}")
    print(f"speed-up of the second load: {rows[0][1] / rows[1][1]:.0f}x")
    key_cost(folder)


def key_cost(folder: Path, repeats: int = 3) -> None:
    from seethrough.data.cache import listing_key
    from seethrough.data.walk import walk

    def stat_only():
        return [(str(p), st.st_size, st.st_mtime_ns) for p, st in walk(folder).files]

    rows = []
    for label, fn in (("names, sizes, mtimes (walk + stat)", stat_only),
                      ("+ content digest of every file (used)", lambda: listing_key(Path(folder).resolve()))):
        times = []
        for _ in range(repeats):  # the files are in the page cache after the first decode
            t0 = time.perf_counter()
            n = len(fn())
            times.append(time.perf_counter() - t0)
        rows.append((label, min(times), n))
    size = sum(st.st_size for _, st in walk(folder).files)
    print(f"\ncache key of {rows[0][2]:,} files ({size / 1e6:.0f} MB), best of {repeats}")
    print(f"{'key':<40} {'seconds':>8}")
    for label, sec, _ in rows:
        print(f"{label:<40} {sec:8.2f}")
    print(f"content digest adds {rows[1][1] - rows[0][1]:.2f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)

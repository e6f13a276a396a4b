"""First and second load of an image folder: decoding versus the memory-mapped decode cache.

    .venv/bin/python benchmarks/folder_cache.py [FOLDER]

FOLDER defaults to ../shared/datasets/cifar10-jpeg (60,000 JPEGs in class folders).
The cache goes to a fresh temporary folder, so the first load always decodes.
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


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)

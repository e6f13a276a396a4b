"""Keep freed memory in the process, so that CPU passes do not fault in fresh pages.

PyTorch on the CPU allocates every activation and gradient afresh. glibc's malloc serves a
block larger than its mmap threshold (128 KB at first, rising to at most 32 MB) with a new
mapping and gives it back to the kernel when it is freed, and it trims the top of the heap
whenever much of it is free. So each forward and backward pass over a large batch writes to
pages the kernel must first fault in and zero. On seed-cnn, integrated gradients of 32 CIFAR
images with 64 steps faulted in about 160,000 pages (640 MB) per call, a quarter of its time
(``ru_minflt`` before and after; docs/benchmarks.md).

:func:`keep_freed_memory` raises those thresholds with glibc's ``mallopt``: blocks up to
:data:`MMAP_THRESHOLD` come from the heap, and up to :data:`TRIM_THRESHOLD` of free heap
stays with the process for the next pass. The price is that the process keeps about its
peak memory instead of returning it; preloading jemalloc or tcmalloc, as PyTorch's CPU
performance guide suggests, has the same effect. The command line calls it at the start of
every command but ``serve``, a long-running server that gives memory back instead
(:mod:`seethrough.web.budget`); in Python it is one call. Where the C library is not glibc (macOS, Windows, musl) it does
nothing and returns False.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3   # glibc's malloc.h
MMAP_THRESHOLD = 256 << 20   # blocks up to 256 MB from the heap (a batch's activations)
TRIM_THRESHOLD = 1 << 30     # give memory back only when 1 GB at the heap's top is free
TOP_PAD = 64 << 20           # grow the heap 64 MB at a time

_done = False


def glibc(name: str):
    """The C library function ``name`` of this process (e.g. ``mallopt``), or None where the
    C library is not glibc (macOS, Windows, musl) and has no such function."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)   # the running process's own C library
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Set glibc's malloc to reuse freed blocks instead of mapping new ones (once per process).

    Returns whether the settings took effect (False off glibc).
    """
    global _done
    if _done:
        return True
    mallopt = glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    return _done

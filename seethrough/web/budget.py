"""How much memory the server may spend decoding uploads at once.

    >>> budget = MemoryBudget(256 * 2**20)
    >>> with budget.reserve(70 * 2**20, "image"):   # waits while others hold too much
    ...     pass

A request first estimates what decoding its image will cost (see
:func:`seethrough.web.uploads.decode_cost`), then reserves that many bytes here. Reservations
are served first come, first served; one that cannot start within ``wait_s`` seconds (120) is
refused with 503, and one larger than the whole budget with 413, so no image and no crowd of
images can take more than the budget. When the last reservation ends, the memory the C
allocator holds free is handed back to the system (:func:`release_free_memory`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager

from ..allocator import M_MMAP_THRESHOLD, glibc
from .uploads import UploadError

MiB = 2**20


class MemoryBudget:
    """A first-come-first-served semaphore counted in bytes; ``total`` bytes in all."""

    def __init__(self, total: int, *, wait_s: float = 120.0, release: bool = True):
        self.total = int(total)
        self.wait_s = wait_s
        self.release = release
        self.used = 0
        self.peak = 0  # the most reserved at once: for tests and benchmarks
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @contextmanager
    def reserve(self, n: int, what: str = "image"):
        """Hold ``n`` bytes for the ``with`` block; raises :class:`UploadError` (413, 503)."""
        if n > self.total:
            raise UploadError(413, f"{what}: decoding it needs about {n / MiB:,.0f} MiB, over the server's "
                                   f"limit of {self.total / MiB:,.0f} MiB (serve --max-memory-mb)")
        ticket = object()
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self.used + n > self.total:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise UploadError(503, f"{what}: the server is busy decoding other images; "
                                               "try again in a moment")
                    self._cond.wait(left)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now
            self.used += n
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                idle = self.used == 0
                self._cond.notify_all()
            if idle and self.release:
                release_free_memory()


_TRIM = glibc("malloc_trim")   # None where there is no glibc: nothing to do
_MALLOPT = glibc("mallopt")


def map_large_blocks(threshold: int = 2**20) -> bool:
    """Make glibc serve every allocation over ``threshold`` bytes by its own ``mmap``, given back
    to the system the moment it is freed. For a server process (``seethrough serve``).

    By default glibc raises that threshold up to 32 MiB after the first large block is freed,
    after which a decoded image's pixels (Pillow allocates them in blocks of up to 16 MiB) come
    from per-thread heaps that keep them when freed: 32 requests decoding at once then leave
    their pixels spread over up to 8 heaps per core.
    """
    return _MALLOPT is not None and bool(_MALLOPT(M_MMAP_THRESHOLD, int(threshold)))


def release_free_memory() -> bool:
    """Hand the memory glibc's allocator holds free back to the system (``malloc_trim(0)``).

    Decoding an image allocates and frees tens of megabytes; without this, glibc keeps much of
    it for reuse and the server's resident memory stays high. Returns False where there is no
    glibc.
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True

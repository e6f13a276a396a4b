"""Atomic writes: a file is written beside its target, then renamed over it.

An interrupted write never leaves a half-written file where a good one was. The file gets
the permissions an ordinary ``open(..., "w")`` would give it (0666 less the user's umask),
not the 0600 of a temporary file. A killed write can leave ``.NAME.*.tmp`` behind;
:meth:`seethrough.run.RunFolder.remove_temporary` clears those from a run folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; set it straight back
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open(path, "w") gives a new file


@contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        os.chmod(tmp, FILE_MODE)
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(target, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")

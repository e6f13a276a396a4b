"""Listing an image folder: the one walk that the folder loader and the decode cache's key share.

Rules, the same for training and for the cache key:

- a file or folder whose name starts with ``.`` (``.thumbs/``, ``.DS_Store``,
  ``.ipynb_checkpoints/``) is ignored at any depth, by the loader and by the key alike;
- symbolic links are followed, to files and to folders; a link back into a folder
  being walked (a loop) is not followed and is named;
- only regular files are listed: a FIFO, socket or device file is named and left out
  (opening a FIFO would wait forever);
- a name that is not valid UTF-8 is named (with its bytes escaped) and left out: it
  could not be written into model.json, a report or a terminal faithfully;
- a folder that cannot be listed (no permission) is named and left out.

Nothing here raises for what it finds in the folder: every problem comes back as a
``(path, reason)`` pair for the caller to warn about (or refuse, with ``--strict``).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


def shown(path) -> str:
    """``path`` as printable text: bytes that are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def valid_name(name: str) -> bool:
    """Whether a name (from ``os`` calls, surrogate-escaped) is valid UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Listing:
    """Regular files found, each with its ``os.stat`` result, and what was left out.

    Paths are strings, each the walked folder's path joined with the names below it (building
    60,000 ``Path`` objects would take longer than the walk itself).
    """

    files: list[tuple[str, os.stat_result]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (shown path, reason)


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def walk(folder, above=()) -> Listing:
    """Every regular file under ``folder`` (any depth), sorted by path, by the rules above.

    ``above`` : folders that count as already being walked (a link back to one is a loop).
    """
    seen = set()
    for p in above:
        try:
            st = os.stat(p)
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    listing = Listing()
    _walk(os.fspath(folder), listing, frozenset(seen))
    return listing


def _entries(folder: str, listing: Listing):
    """The non-hidden entries of ``folder`` sorted by name, or None (named in ``listing``) if unreadable."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        listing.problems.append((shown(folder), f"cannot list this folder ({exc.strerror or exc})"))
        return None


def _walk(folder: str, listing: Listing, ancestors: frozenset) -> None:
    """Depth first in name order, with a stack rather than recursion (a folder may nest thousands deep)."""
    try:
        me = os.stat(folder)
    except OSError as exc:
        listing.problems.append((shown(folder), f"cannot read this folder ({exc.strerror or exc})"))
        return
    stack = []  # (entry, ancestors of the folder holding it), the next one last
    walked = {}  # (device, inode) -> the path a folder was first listed under

    def push(path, st, above):
        walked[(st.st_dev, st.st_ino)] = path
        entries = _entries(path, listing)
        above = above | {(st.st_dev, st.st_ino)}
        stack.extend((e, above) for e in reversed(entries or []))

    push(folder, me, ancestors)
    while stack:
        e, above = stack.pop()
        if not valid_name(e.name):
            listing.problems.append((shown(e.path), "its name is not valid UTF-8; rename it to use it"))
            continue
        try:
            if e.is_file(follow_symlinks=False):  # the common case: one stat call, no Path until kept
                listing.files.append((e.path, e.stat(follow_symlinks=False)))
                continue
            st = os.stat(e.path)  # a folder, a link (followed) or something else
        except OSError as exc:
            why = ("a symbolic link loop" if exc.errno == errno.ELOOP else
                   "a broken symbolic link" if e.is_symlink() else f"cannot read it ({exc.strerror})")
            listing.problems.append((shown(e.path), why))
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in above:
                listing.problems.append((shown(e.path), "a symbolic link loop (it links back to a folder "
                                                        "above it); not followed"))
            elif (st.st_dev, st.st_ino) in walked:  # two links to one folder: list it once
                listing.problems.append((shown(e.path), f"the same folder as {shown(walked[st.st_dev, st.st_ino])}, "
                                                        "already listed; not followed"))
            else:
                push(e.path, st, above)
        elif stat.S_ISREG(st.st_mode):
            listing.files.append((e.path, st))
        else:
            listing.problems.append((shown(e.path), f"{_kind(st.st_mode)}, not a regular file"))


def subfolders(folder) -> tuple[list[Path], list[tuple[str, str]]]:
    """The non-hidden sub-folders of ``folder`` (symbolic links followed), sorted, and the problems found."""
    found, problems = [], []
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        return [], [(shown(folder), f"cannot list this folder ({exc.strerror or exc})")]
    for e in entries:
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            continue
        if not valid_name(e.name):
            problems.append((shown(e.path), "its name is not valid UTF-8; rename the class folder to use it"))
            continue
        found.append(Path(e.path))
    return found, problems

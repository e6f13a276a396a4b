"""Finding dataset files on disk, or downloading them once into a cache.

Where files are looked for, in order:

1. ``data_dir`` (the ``--data-dir`` option), if given;
2. ``$SEETHROUGH_DATA``, if set;
3. the user cache folder (``platformdirs.user_cache_dir("seethrough")``).

Downloads go to the first writable of 1-3 (``--data-dir``, else ``$SEETHROUGH_DATA``,
else the cache), are checked against the official MD5, and are renamed into place
only when they match. A file whose checksum does not match is moved aside to
``NAME.corrupt`` and never used.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumError, DataError

_verified: dict[tuple, bool] = {}


@dataclass(frozen=True)
class RemoteFile:
    name: str          # file name inside the dataset's folder
    url: str | None    # official address; None when there is no official download
    md5: str | None    # official checksum; None when none is published


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("seethrough"))


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get("SEETHROUGH_DATA"):
        roots.append(Path(os.environ["SEETHROUGH_DATA"]))
    roots.append(cache_dir())
    return roots


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _move_aside(path: Path) -> str:
    try:
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        return f"; moved aside to {bad}"
    except OSError:
        return ""


def verify(path: Path, md5: str | None) -> None:
    """Raise ChecksumError (moving the file aside when possible) if ``path`` doesn't match."""
    if md5 is None:
        return
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _verified.get(key):
        return
    got = md5sum(path)
    if got != md5:
        where = _move_aside(path)
        raise ChecksumError(f"{path}: checksum mismatch (md5 {got}, expected {md5}){where}")
    _verified[key] = True


def locate(subdir: str, files: list[RemoteFile], data_dir=None) -> Path | None:
    """The first root whose ``subdir`` holds all ``files``, checked; None if none does."""
    for root in search_roots(data_dir):
        folder = root / subdir
        if all((folder / f.name).is_file() for f in files):
            for f in files:
                verify(folder / f.name, f.md5)
            return folder
    return None


def _download(url: str, target: Path, md5: str | None) -> None:
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with Progress(TextColumn(target.name), BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), transient=True) as bar:
                task = bar.add_task("download", total=total)
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.advance(task, len(block))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url} ({exc}); put a copy in {target.parent} "
                        f"or point $SEETHROUGH_DATA / --data-dir at a folder that has it") from None
    try:
        verify(tmp, md5)
    except ChecksumError as exc:
        raise ChecksumError(f"{url}: downloaded file does not match its checksum ({exc})") from None
    os.replace(tmp, target)


def fetch(subdir: str, files: list[RemoteFile], data_dir=None, download: bool = True) -> Path:
    """Return the folder holding ``files``, downloading the missing ones if allowed."""
    found = locate(subdir, files, data_dir)
    if found is not None:
        return found
    where = ", ".join(str(r / subdir) for r in search_roots(data_dir))
    missing_url = [f.name for f in files if f.url is None]
    if missing_url or not download:
        why = ("it has no official download" if missing_url else "downloads are off")
        raise DataError(f"{subdir}: files {', '.join(f.name for f in files)} not found in {where} "
                        f"({why}); set $SEETHROUGH_DATA or --data-dir to a folder holding {subdir}/")
    folder = search_roots(data_dir)[0] / subdir
    for f in files:
        if not (folder / f.name).is_file():
            _download(f.url, folder / f.name, f.md5)
        verify(folder / f.name, f.md5)
    return folder

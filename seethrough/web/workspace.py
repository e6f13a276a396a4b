"""The server's workspace: the data set a user builds in the page, and the runs trained on it.

    seethrough-workspace/
      dataset/<class>/<32 hex digits>.png   images, under names the server makes
      runs/<name>/                          ordinary run folders (see :mod:`seethrough.run`)
      runs/<name>/data/<class>/...          the data set as it was when that run started

A request names a class by its name and an image by its id; both are checked against
a pattern and then looked up among the folders and files that exist, so no part of a
request is joined to a path unchecked. Uploaded images are decoded by
:mod:`.uploads` (size, type and pixel checks), shrunk to at most :data:`STORE_SIDE`
pixels a side, and written atomically as PNG; nothing already stored is changed when
a request is refused.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import secrets
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import _io
from ..errors import SeethroughError
from ..run import RunFolder
from .uploads import FORMATS, UploadError, open_upload

STORE_SIDE = 256  # stored images are shrunk to fit this square: training sizes go up to 128
CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")
RESERVED = {"train", "test", "val"}  # a folder holding these is read as already split
IMAGE_ID = re.compile(r"^[0-9a-f]{32}$")
ZIP_RATIO = 200  # a member that inflates more than this is refused as a zip bomb


@dataclass(frozen=True)
class Limits:
    """Caps on what the workspace holds; each has the name an error gives when it is passed."""

    images_per_class: int = 500
    classes: int = 20
    upload_bytes: int = 10 * 1024 * 1024      # one request's body (a zip, or a batch of files)
    workspace_bytes: int = 500 * 1024 * 1024  # everything under the workspace folder
    pixels: int = 16_000_000                  # width x height of one image
    queued_trainings: int = 3

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class LimitExceeded(SeethroughError):
    """A request that would pass one of :class:`Limits`; ``limit`` names it."""

    def __init__(self, limit: str, message: str, status: int = 413):
        super().__init__(message)
        self.limit = limit
        self.status = status


class NotFound(SeethroughError):
    """A class or image the workspace does not hold."""


def new_image_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits. Sorting by name sorts by
    arrival, so the same uploads in the same order give the same data set order (and split)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def check_class_name(name: str) -> str:
    """``name`` stripped, if it can be a class folder; raises :class:`SeethroughError` otherwise."""
    name = (name or "").strip()
    if not CLASS_NAME.match(name) or name.lower() in RESERVED:
        raise SeethroughError(f"class name {name!r}: use 1-40 letters, digits, spaces, '-' or '_', "
                              f"starting with a letter or digit, and not {', '.join(sorted(RESERVED))}")
    return name


def folder_bytes(root: Path) -> int:
    """Bytes of the files under ``root``, each hard-linked file counted once."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class Workspace:
    """One folder: the page's data set (``dataset/``) and the runs trained from the page (``runs/``).

    Nothing is created until something is written, so serving a workspace that does
    not exist yet leaves no trace.
    """

    def __init__(self, root, limits: Limits | None = None):
        self.root = Path(root).expanduser().resolve()
        self.limits = limits or Limits()
        self.dataset = self.root / "dataset"
        self.runs = self.root / "runs"
        self._lock = threading.RLock()  # one change at a time: counts and byte totals stay true

    # ------------------------------------------------------------------ reading
    def classes(self) -> list[str]:
        if not self.dataset.is_dir():
            return []
        return sorted(p.name for p in self.dataset.iterdir() if p.is_dir() and CLASS_NAME.match(p.name))

    def _class_dir(self, name: str) -> Path:
        """The folder of an existing class, found by looking the name up (never by joining it)."""
        for c in self.classes():
            if c == name:
                return self.dataset / c
        raise NotFound(f"no class named {name!r} in the workspace")

    def image_ids(self, name: str) -> list[str]:
        folder = self._class_dir(name)
        files = sorted(folder.iterdir(), key=lambda p: p.name)  # ids begin with the time: oldest first
        return [p.stem for p in files if p.suffix == ".png" and IMAGE_ID.match(p.stem)]

    def image_path(self, name: str, image_id: str) -> Path:
        if not IMAGE_ID.match(image_id or ""):
            raise NotFound(f"no image {image_id!r} in class {name!r}")
        for p in self._class_dir(name).iterdir():
            if p.name == f"{image_id}.png":
                return p
        raise NotFound(f"no image {image_id!r} in class {name!r}")

    def summary(self) -> dict:
        """Classes with their image ids (oldest first), the bytes used, and the limits."""
        classes = [{"name": c, "count": len(ids), "images": ids}
                   for c in self.classes() for ids in [self.image_ids(c)]]
        used = folder_bytes(self.root) if self.root.is_dir() else 0
        return {"classes": classes, "bytes": used, "limits": self.limits.as_dict()}

    def run_folders(self) -> list[Path]:
        """Finished run folders under ``runs/`` (model, weights and evaluation), oldest first."""
        if not self.runs.is_dir():
            return []
        found = [p for p in self.runs.iterdir() if p.is_dir() and RunFolder(p).is_trained()
                 and RunFolder(p).evaluation().is_file()]  # a training stopped half-way has no evaluation
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    # ------------------------------------------------------------------ changing
    def add_class(self, name: str) -> str:
        name = check_class_name(name)
        with self._lock:
            existing = self.classes()
            if any(c.lower() == name.lower() for c in existing):
                raise SeethroughError(f"class {name!r} exists already")
            if len(existing) >= self.limits.classes:
                raise LimitExceeded("classes", f"the workspace holds {len(existing)} classes, the limit "
                                               f"(classes) is {self.limits.classes}", 409)
            (self.dataset / name).mkdir(parents=True)
        return name

    def remove_class(self, name: str) -> None:
        with self._lock:
            shutil.rmtree(self._class_dir(name))

    def remove_image(self, name: str, image_id: str) -> None:
        with self._lock:
            self.image_path(name, image_id).unlink()

    def add_images(self, name: str, files: list[tuple[bytes, str | None]]) -> dict:
        """Decode ``files`` ((bytes, content type) pairs) and store them in class ``name``.

        Every file is checked before any is written; a file that is not an image is
        skipped and counted. Returns ``{"added": [ids], "skipped": [reasons]}``.
        """
        pngs, skipped = [], []
        for i, (data, ctype) in enumerate(files):
            try:
                pngs.append(self._to_png(data, ctype))
            except UploadError as exc:
                if exc.status == 413:  # too big, in bytes or pixels: a limit, not a bad file
                    limit = "pixels" if "pixels" in exc.message or "bomb" in exc.message else "upload_bytes"
                    raise LimitExceeded(limit, f"file {i + 1}: {exc.message}") from None
                skipped.append(f"file {i + 1}: {exc.message}")
        with self._lock:
            folder = self._class_dir(name)
            have = len(self.image_ids(name))
            if have + len(pngs) > self.limits.images_per_class:
                raise LimitExceeded("images_per_class", f"class {name!r} holds {have} images; {len(pngs)} more "
                                    f"would pass the limit (images_per_class) of {self.limits.images_per_class}")
            used, adding = folder_bytes(self.root), sum(len(p) for p in pngs)
            if used + adding > self.limits.workspace_bytes:
                raise LimitExceeded("workspace_bytes", f"the workspace holds {used:,} bytes; {adding:,} more "
                                    f"would pass the limit (workspace_bytes) of {self.limits.workspace_bytes:,}")
            ids = []
            for png in pngs:
                image_id = new_image_id()
                _io.write_bytes(folder / f"{image_id}.png", png)
                ids.append(image_id)
        return {"added": ids, "skipped": skipped}

    def _to_png(self, data: bytes, ctype: str | None) -> bytes:
        """One upload -> PNG bytes of at most STORE_SIDE a side: grayscale when the image is."""
        img = open_upload(data, ctype, max_bytes=self.limits.upload_bytes, max_pixels=self.limits.pixels)
        if img.mode not in ("L", "RGB"):
            if "A" in img.getbands():  # transparent parts become white, as they look on a page
                back = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(back, img.convert("RGBA"))
            img = img.convert("RGB")
        if img.mode == "RGB":
            a = np.asarray(img)  # (H, W, 3)
            if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
                img = img.convert("L")
        img.thumbnail((STORE_SIDE, STORE_SIDE), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def add_zip(self, name: str, data: bytes) -> dict:
        """Store the images inside a zip archive in class ``name``.

        The archive's file names are never used: members are read by index, each read
        stopped at the byte limit whatever the archive claims, and a member that
        inflates more than :data:`ZIP_RATIO` times, or a total past the byte limit,
        refuses the whole archive (a zip bomb). Folders and non-images are skipped.
        """
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError):
            raise SeethroughError("zip: not a zip archive") from None
        cap, total, files = self.limits.upload_bytes, 0, []
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > self.limits.images_per_class:
                raise LimitExceeded("images_per_class", f"zip: {len(members)} files is more than a class may hold "
                                    f"(images_per_class {self.limits.images_per_class})")
            for i, m in enumerate(members):
                if m.file_size > cap or (m.compress_size and m.file_size > ZIP_RATIO * max(m.compress_size, 1)
                                         and m.file_size > 1024 * 1024):
                    raise LimitExceeded("upload_bytes", f"zip: member {i + 1} would inflate to {m.file_size:,} "
                                        f"bytes; refused as a zip bomb")
                try:
                    with archive.open(m) as f:
                        body = f.read(cap - total + 1)
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
                    raise SeethroughError(f"zip: member {i + 1} cannot be read ({type(exc).__name__})") from None
                total += len(body)
                if total > cap:
                    raise LimitExceeded("upload_bytes", f"zip: the files inside come to more than the limit "
                                        f"(upload_bytes) of {cap:,} bytes")
                if _looks_like_image(body):
                    files.append((body, None))
        result = self.add_images(name, files)
        result["skipped"] += [f"{len(members) - len(files)} file(s) in the zip are not images"] \
            if len(files) < len(members) else []
        return result

    # ------------------------------------------------------------------ training
    def snapshot(self, target: Path) -> Path:
        """Freeze the data set into ``target`` (hard links where the disk allows, else copies).

        The run then keeps the images it was trained and tested on, whatever the data
        set becomes later.
        """
        with self._lock:
            for c in self.classes():
                dst = target / c
                dst.mkdir(parents=True, exist_ok=True)
                for image_id in self.image_ids(c):
                    src = self.dataset / c / f"{image_id}.png"
                    try:
                        os.link(src, dst / src.name)
                    except OSError:
                        shutil.copy2(src, dst / src.name)
        return target

    def new_run_dir(self, base: str) -> Path:
        """A fresh, not yet existing folder under ``runs/`` named after ``base``."""
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "run"
        self.runs.mkdir(parents=True, exist_ok=True)
        path, i = self.runs / base, 2
        while path.exists():
            path, i = self.runs / f"{base}-{i}", i + 1
        return path

    def check_room(self) -> None:
        """Refuse to start a training when the workspace is full already."""
        used = folder_bytes(self.root) if self.root.is_dir() else 0
        if used >= self.limits.workspace_bytes:
            raise LimitExceeded("workspace_bytes", f"the workspace holds {used:,} bytes, at the limit "
                                f"(workspace_bytes) of {self.limits.workspace_bytes:,}; remove images or runs")


def _looks_like_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data), formats=sorted(FORMATS)):
            return True
    except Exception:
        return False

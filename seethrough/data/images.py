"""Turning any image Pillow reads into the uint8 (H, W, C) array a model expects.

The conversion rule, used for training folders and for prediction alike:

1. Mode. 16-bit grayscale keeps its high byte; 32-bit (``I``, ``F``) is kept
   as is when it lies in 0..255, else scaled by 255/max; transparent images (RGBA, LA,
   palette with transparency) are composited onto white; CMYK, palette and other
   modes are converted by Pillow. The result is ``L`` for a 1-channel model and
   ``RGB`` for a 3-channel one.
2. Size. The shorter side is scaled to the target's (bilinear, antialiased), then
   the centre is cropped to the target height and width, so the aspect ratio is kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError, SkippedImageWarning
from .walk import shown

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs early


@contextlib.contextmanager
def quiet():
    """Pillow's own warnings (a corrupt EXIF block, a short TIFF read) hidden: they name no file, and a
    file that decodes is used while one that does not is skipped by name; a decompression bomb is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, or raise DataError naming the file."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(f"{shown(path)}: " + ("no such file" if exc.errno == errno.ENOENT
                                               else f"cannot read it ({exc.strerror})")) from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{shown(path)}: is a folder, expected an image file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise DataError(f"{shown(path)}: not a regular file (a FIFO, socket or device); expected an image file")
    try:
        with quiet(), Image.open(path) as opened:
            opened.load()
            img = ImageOps.exif_transpose(opened)  # upright, and a copy: the file is closed on return
    except Exception as exc:  # Pillow raises many types for bad files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"{shown(path)}: not a readable image ({type(exc).__name__}: {first})") from None
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(img, dtype=np.uint16)
        return Image.fromarray((a >> 8).astype(np.uint8), "L")
    if img.mode in ("I", "F"):  # 32-bit: keep 0..255 data as is, else scale by the max
        a = np.asarray(img, dtype=np.float64)
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 / top if top > 255 else 1.0
        return Image.fromarray(np.clip(a * scale, 0, 255).astype(np.uint8), "L")
    return img


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert to ``L`` (channels=1) or ``RGB`` (channels=3) by the rule above."""
    img = ImageOps.exif_transpose(img) if hasattr(img, "getexif") else img
    img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    if channels == 1:
        return img.convert("L")
    if channels == 3:
        return img.convert("RGB")
    raise DataError(f"models take 1 or 3 channels, not {channels}")


def fit_size(img: Image.Image, height: int, width: int) -> Image.Image:
    """Scale the shorter side to fit, then centre-crop to (height, width)."""
    w, h = img.size
    if (h, w) == (height, width):
        return img
    scale = max(height / h, width / w)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
    left, top = (nw - width) // 2, (nh - height) // 2
    return img.crop((left, top, left + width, top + height))


def image_to_array(img: Image.Image, shape: tuple[int, int, int]) -> np.ndarray:
    """Convert a PIL image to uint8 (H, W, C) for a model with input ``shape`` = (H, W, C)."""
    h, w, c = shape
    with quiet():
        arr = np.array(fit_size(to_mode(img, c), h, w), dtype=np.uint8)  # a writable copy (asarray of a PIL image is read-only)
    return arr.reshape(h, w, c)


def load_image(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Read an image file into uint8 (H, W, C), raising DataError naming the file if it can't."""
    img = open_image(path)
    try:
        return image_to_array(img, shape)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{shown(path)}: cannot convert to {shape[0]}x{shape[1]}x{shape[2]} "
                        f"({type(exc).__name__}: {exc})") from None


def load_images(paths, shape: tuple[int, int, int]) -> tuple[np.ndarray, list, list[tuple[str, str]]]:
    """Read many image files for a model with input ``shape`` = (H, W, C), skipping those that fail.

    Returns
    -------
    images : uint8 ndarray, shape (N, H, W, C)
        The readable files, in the order given.
    kept : list
        The entries of ``paths`` that were read, in the same order.
    skipped : list of (path, reason)
        The others, each also named in a :class:`~seethrough.errors.SkippedImageWarning`.

    Raises DataError (the first file's reason) when none can be read.
    """
    arrays, kept, skipped = [], [], []
    for p in paths:
        try:
            arrays.append(load_image(p, shape))
            kept.append(p)
        except DataError as exc:
            reason = str(exc).split(": ", 1)[-1]
            skipped.append((shown(p), reason))
    if not arrays:
        if len(skipped) == 1:
            raise DataError(f"{skipped[0][0]}: {skipped[0][1]}")
        raise DataError(f"none of the {len(skipped)} images could be read; {skipped[0][0]}: {skipped[0][1]}")
    for p, reason in skipped:
        warnings.warn(f"skipped {p}: {reason}", SkippedImageWarning, stacklevel=2)
    return np.stack(arrays), kept, skipped


def array_to_input(arr: np.ndarray, shape: tuple[int, int, int], source: str = "array") -> np.ndarray:
    """Convert an in-memory image array (H, W), (H, W, C) of any dtype to the model's uint8 shape."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise DataError(f"{source}: expected an image of shape (H, W) or (H, W, C), got {arr.shape}")
    if arr.dtype != np.uint8:
        top = float(arr.max()) if arr.size else 1.0
        arr = np.clip(arr * (255.0 if top <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return image_to_array(img, shape)


IMAGE_RULE = ("mode: 16/32-bit to 8-bit, transparency onto white, then L or RGB; "
              "size: shorter side scaled to fit (bilinear), centre crop")

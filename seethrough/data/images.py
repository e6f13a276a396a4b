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

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs early


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, or raise DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except Exception as exc:  # Pillow raises many types for bad files
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
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
        raise DataError(f"{path}: cannot convert to {shape[0]}x{shape[1]}x{shape[2]} ({exc})") from None


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

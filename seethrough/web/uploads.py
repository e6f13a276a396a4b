"""Turning an uploaded file into a model input, refusing anything that is not a modest image.

The checks, in order, each with its own HTTP status:

1. size in bytes (413), enforced while the body is read (see :class:`BodyLimit`);
2. declared content type: ``image/*`` or unspecified (415);
3. format sniffed from the bytes by Pillow: one of :data:`FORMATS` (415);
4. pixel count read from the header, before any decoding (413), which stops
   decompression bombs: a tiny file that claims a huge image;
5. memory: what decoding will cost, estimated from the header (:func:`decode_cost`), is
   reserved from the server's :class:`~seethrough.web.budget.MemoryBudget` before decoding
   starts (413 when it is over the whole budget, 503 when the server stays busy);
6. decoding (400 when the file is broken).

Decoding shrinks a large image on the way (:func:`shrink_while_decoding`): a JPEG is decoded
at 1/2, 1/4 or 1/8 of its size by the JPEG decoder itself (``Image.draft``), and any image
still more than :data:`SHRINK_GAP` times the size the model needs is shrunk by a whole factor
(box filter, ``Image.reduce``) a strip at a time, so that only the decoded image and one strip
are ever large. The shared conversion rule (:func:`seethrough.data.images.image_to_array`)
then runs on the small image.

Nothing here touches the filesystem: the bytes stay in memory.
"""

from __future__ import annotations

import io
import math
import warnings
from contextlib import nullcontext

import numpy as np
from PIL import Image, ImageOps

from ..data.images import _to_8bit, image_to_array
from .guard import refuse

FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 16_000_000
SHRINK_GAP = 8  # shrink while decoding to no less than 8x the size the rule's resize then brings to the model's
STRIP_BYTES = 4 * 2**20  # a strip of the decoded image converted and shrunk at a time
_GENERIC_TYPES = {"", "application/octet-stream"}
_ORIENTATION = 0x0112  # the EXIF tag
_KEPT_MODES = {"L", "LA", "RGB", "RGBA", "I", "F"}  # modes Image.reduce averages as they are


class UploadError(Exception):
    """A refused upload: ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, content_type: str | None, shape: tuple[int, int, int], *,
                 max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, budget=None) -> np.ndarray:
    """Image file bytes -> uint8 (H, W, C) for a model with input ``shape`` = (H, W, C).

    ``budget``, a :class:`~seethrough.web.budget.MemoryBudget`, holds the decoding's estimated
    memory while it runs; without one, nothing is reserved.
    """
    img = open_upload(data, content_type, max_bytes=max_bytes, max_pixels=max_pixels)
    if img.format == "JPEG":  # the decoder scales by 1/2, 1/4 or 1/8 on its own: set before the cost
        img.draft(None, _wanted_size(img.size, _file_target(img, shape)))
    with budget.reserve(decode_cost(img, shape), "image") if budget is not None else nullcontext():
        small = shrink_while_decoding(img, shape)
        del img  # the full-size pixels go before the conversion's copies are made
        try:
            return np.array(image_to_array(small, shape))  # a writable copy: torch.from_numpy wants one
        except MemoryError:
            raise UploadError(503, "image: the server ran out of memory converting it") from None
        except Exception as exc:
            raise UploadError(400, f"image: cannot convert to {shape[0]}x{shape[1]}x{shape[2]} ({exc})") from None


def open_upload(data: bytes, content_type: str | None, *, max_bytes: int = MAX_BYTES,
                max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Check an upload and read its header (nothing is decoded yet); raises :class:`UploadError`."""
    if len(data) > max_bytes:
        raise UploadError(413, f"image: {len(data):,} bytes is over the limit of {max_bytes:,} bytes")
    if not data:
        raise UploadError(400, "image: the uploaded file is empty")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in _GENERIC_TYPES and not ctype.startswith("image/"):
        raise UploadError(415, f"image: content type {ctype!r} is not an image type")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=sorted(FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(413, f"image: refused as a decompression bomb ({exc})") from None
        except Exception:
            raise UploadError(415, "image: not an image in an accepted format "
                                   f"({', '.join(sorted(FORMATS))})") from None
    w, h = img.size
    if w * h > max_pixels:
        raise UploadError(413, f"image: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}")
    if w < 1 or h < 1:
        raise UploadError(400, f"image: {w}x{h} has no pixels")
    return img


def decode_cost(img: Image.Image, shape: tuple[int, int, int]) -> int:
    """Bytes that :func:`shrink_while_decoding` and the conversion after it will hold at most.

    From the header alone: the decoded image (Pillow keeps 1 byte a pixel for modes 1, L and
    P, 2 for 16-bit, 4 for the rest, RGB included), a second copy while an EXIF rotation is
    applied, the strips, and the conversion rule's copies of the shrunk image (about six of
    4 bytes a pixel; 32-bit images are scaled in float64 by NumPy).
    """
    w, h = img.size
    full = w * h * _pixel_bytes(img.mode)
    if _orientation(img) != 1:
        full *= 2
    f = _factor((w, h), _wanted_size((w, h), _file_target(img, shape)))
    rows = _strip_rows(w, f)
    strips = 3 * w * min(rows, h) * 4 if f > 1 else 0
    small = math.ceil(w / f) * math.ceil(h / f)
    per_pixel = 32 if img.mode in ("I", "F") else 24
    return full + strips + small * per_pixel + 2**20  # and a MiB for the decoder's own buffers


def shrink_while_decoding(img: Image.Image, shape: tuple[int, int, int]) -> Image.Image:
    """Decode ``img`` (EXIF rotation applied) shrunk by the largest whole factor that keeps it
    at least :data:`SHRINK_GAP` times the size the conversion rule scales it to; raises
    :class:`UploadError` (400, 413) for a broken file or a bomb."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            f = _factor(img.size, _wanted_size(img.size, shape[:2]))
            return _reduce_in_strips(img, f) if f > 1 else img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(413, f"image: refused as a decompression bomb ({exc})") from None
        except MemoryError:
            raise UploadError(503, "image: the server ran out of memory decoding it") from None
        except Exception as exc:
            raise UploadError(400, f"image: the {img.format} file is damaged ({type(exc).__name__})") from None


def _reduce_in_strips(img: Image.Image, f: int) -> Image.Image:
    """``img.reduce(f)``, a strip of whole boxes at a time, each strip first converted pixel by
    pixel to a mode that averages (palette to RGB(A), 16-bit to 8-bit, CMYK to RGB ...)."""
    mode = _strip_mode(img)
    w, h = img.size
    out = Image.new(mode, (math.ceil(w / f), math.ceil(h / f)))
    rows = _strip_rows(w, f)
    for top in range(0, h, rows):
        strip = img.crop((0, top, w, min(h, top + rows)))
        if strip.mode.startswith("I;16"):
            strip = _to_8bit(strip)
        elif strip.mode != mode:
            strip = strip.convert(mode)
        out.paste(strip.reduce(f), (0, top // f))  # RGBA and LA are averaged premultiplied
    return out


def _strip_mode(img: Image.Image) -> str:
    if img.mode in _KEPT_MODES:
        return img.mode
    if img.mode == "1" or img.mode.startswith("I;16"):
        return "L"
    if img.mode in ("P", "PA", "RGBa", "La"):
        return "LA" if img.mode == "La" else (
            "RGBA" if img.mode != "P" or "transparency" in img.info else "RGB")
    return "RGB"


def _strip_rows(width: int, f: int) -> int:
    """Rows in a strip: a multiple of ``f`` (boxes never straddle strips) near STRIP_BYTES."""
    return f * max(1, STRIP_BYTES // max(1, width * 4 * f))


def _pixel_bytes(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation as the header tells it, read without decoding (``getexif`` would
    decode a PNG whole to look for an eXIf chunk after the pixels)."""
    try:
        if img.format == "TIFF":  # its tags were read at open
            exif = img.getexif()
        elif "exif" in img.info:
            exif = Image.Exif()
            exif.load(img.info["exif"])
        else:
            return 1
        return int(exif.get(_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block: decoding will say so, or ignore it
        return 1


def _file_target(img: Image.Image, shape) -> tuple[int, int]:
    """The model's (height, width) in the file's own orientation (EXIF 5 to 8 turn it a quarter)."""
    h, w = shape[0], shape[1]
    return (w, h) if _orientation(img) in (5, 6, 7, 8) else (h, w)


def _wanted_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(width, height) an image of ``size`` may shrink to: SHRINK_GAP x the size fit_size scales
    it to for ``target`` = (height, width)."""
    w, h = size
    scale = max(target[0] / h, target[1] / w)
    return max(1, math.ceil(w * scale * SHRINK_GAP)), max(1, math.ceil(h * scale * SHRINK_GAP))


def _factor(size: tuple[int, int], wanted: tuple[int, int]) -> int:
    return max(1, min(size[0] // wanted[0], size[1] // wanted[1]))


class BodyLimit:
    """ASGI middleware: answer 413 as soon as a request body passes ``max_bytes``.

    The declared Content-Length is checked first; a body sent without one (chunked)
    is read up to the limit before the app sees any of it, so no request can make the
    server hold more than ``max_bytes`` plus one chunk.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send, int(length))
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                return await self._refuse(send, seen)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks  # one copy of the body, not two, and none once the app has taken it

        async def replay():
            nonlocal body
            if body is not None:
                message, body = {"type": "http.request", "body": body, "more_body": False}, None
                return message
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, send, n: int):
        await refuse(send, 413, f"request body of {n:,}+ bytes is over the limit of {self.max_bytes:,} bytes",
                     close=True)

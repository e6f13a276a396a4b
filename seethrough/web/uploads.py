"""Turning an uploaded file into a model input, refusing anything that is not a modest image.

The checks, in order, each with its own HTTP status:

1. size in bytes (413), enforced while the body is read (see :class:`BodyLimit`);
2. declared content type: ``image/*`` or unspecified (415);
3. format sniffed from the bytes by Pillow: one of :data:`FORMATS` (415);
4. pixel count read from the header, before any decoding (413), which stops
   decompression bombs: a tiny file that claims a huge image;
5. decoding (400 when the file is broken).

Nothing here touches the filesystem: the bytes stay in memory.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from ..data.images import image_to_array

FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 16_000_000
_GENERIC_TYPES = {"", "application/octet-stream"}


class UploadError(Exception):
    """A refused upload: ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, content_type: str | None, shape: tuple[int, int, int], *,
                 max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes -> uint8 (H, W, C) for a model with input ``shape`` = (H, W, C)."""
    img = open_upload(data, content_type, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        return np.array(image_to_array(img, shape))  # a writable copy: torch.from_numpy wants one
    except Exception as exc:
        raise UploadError(400, f"image: cannot convert to {shape[0]}x{shape[1]}x{shape[2]} ({exc})") from None


def open_upload(data: bytes, content_type: str | None, *, max_bytes: int = MAX_BYTES,
                max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Check and fully decode an uploaded image; raises :class:`UploadError`."""
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
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(413, f"image: refused as a decompression bomb ({exc})") from None
        except Exception as exc:
            raise UploadError(400, f"image: the {img.format} file is damaged ({type(exc).__name__})") from None
    return img


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
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, send, n: int):
        import json

        body = json.dumps({"status": 413, "message": f"request body of {n:,}+ bytes is over the limit "
                                                     f"of {self.max_bytes:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

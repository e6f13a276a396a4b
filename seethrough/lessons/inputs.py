"""The user's own numbers for a lesson: ``--image`` (CSV or image file), ``--kernel``, ``--stride``, ``--padding``.

Each reader returns a float64 array or raises a one-line SeethroughError naming the
argument and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, ModelError, SeethroughError

MAX_SIDE = 16  # grids wider than this do not fit a terminal
IMAGE_FILE_SIDE = 8  # an image file is shrunk to 8x8 so every number can be shown


def parse_rows(text: str, source: str) -> np.ndarray:
    """Rows separated by newlines or ';', values by commas or spaces -> 2-D float array."""
    rows = []
    for n, line in enumerate(text.replace(";", "\n").splitlines(), 1):
        cells = [c for c in line.replace(",", " ").split() if c]
        if not cells:
            continue
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise DataError(f"{source}: row {n}: {bad!r} is not a number; expected numbers separated "
                            "by commas") from None
    if not rows:
        raise DataError(f"{source}: no numbers found; expected rows of comma-separated numbers")
    if len({len(r) for r in rows}) != 1:
        raise DataError(f"{source}: rows have different lengths {sorted({len(r) for r in rows})}; "
                        "expected a rectangle of numbers")
    arr = np.array(rows, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{source}: contains inf or nan; expected finite numbers")
    return arr


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_image(value, channels: int = 1) -> np.ndarray:
    """``--image``: a CSV/text file of numbers (H, W), or any image file shrunk to 8x8.

    Returns (H, W) for one channel or (C, H, W) for three; image files give 0..255 values.
    """
    path = Path(value)
    if not path.is_file():
        raise DataError(f"--image {value}: no such file; expected a CSV of numbers or an image file")
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise DataError(f"--image {path}: not a text file; expected a CSV of numbers") from None
        arr = parse_rows(text, f"--image {path}")
        if channels == 3:
            arr = np.stack([arr] * 3)
    else:
        from ..data.images import load_image

        arr = load_image(path, (IMAGE_FILE_SIDE, IMAGE_FILE_SIDE, channels)).astype(np.float64)
        arr = arr[..., 0] if channels == 1 else arr.transpose(2, 0, 1)
    if max(arr.shape[-2:]) > MAX_SIDE:
        raise DataError(f"--image {path}: {arr.shape[-2]}x{arr.shape[-1]} numbers is too many to show; "
                        f"expected at most {MAX_SIDE}x{MAX_SIDE}")
    return arr


def read_kernel(value) -> np.ndarray:
    """``--kernel``: '1,0,1;0,1,0;1,0,1' (rows split by ';') or a CSV file; must be square."""
    path = Path(str(value))
    source = f"--kernel {value}"
    k = parse_rows(path.read_text(), source) if path.is_file() else parse_rows(str(value), source)
    if k.shape[0] != k.shape[1]:
        raise DataError(f"{source}: a {k.shape[0]}x{k.shape[1]} kernel; expected a square one, "
                        "e.g. '1,0,-1;1,0,-1;1,0,-1'")
    return k


def check_stride(stride: int) -> int:
    if stride < 1:
        raise SeethroughError(f"--stride must be at least 1, got {stride}")
    return stride


def check_padding(padding: int) -> int:
    if padding < 0:
        raise SeethroughError(f"--padding must be 0 or more, got {padding}")
    return padding


def check_window(image_shape, k: int, stride: int, pad: int, what: str = "--kernel") -> None:
    """Refuse a window larger than the padded image, naming the argument."""
    from ..scratch.layers import out_size

    check_stride(stride)
    check_padding(pad)
    h, w = image_shape[-2:]
    try:
        out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    except ModelError as exc:
        raise SeethroughError(f"{what}: {exc}") from None

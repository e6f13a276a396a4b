"""Hostile inputs for seethrough, and what must hold for each: the fuzz targets.

Used twice: by ``tests/test_fuzz_inputs.py`` (a few examples each, in the default suite) and by
``tests/fuzz_long.py`` (``make fuzz``: as many as fit in a given time).

Each target takes a plain-data plan drawn by a Hypothesis strategy (so a failing input prints as
something a person can read and rebuild), builds it in a fresh sandbox folder and runs the library
or the command line on it. What must hold, for every input:

- the call returns, or raises a :class:`~seethrough.errors.SeethroughError` whose message is one
  line; any other exception is a failure (the command line would show a traceback);
- every warning is one line, and a skipped file is named in a ``SkippedImageWarning``;
- it ends within ``TIMEOUT`` seconds (a hang is a failure);
- no file outside the sandbox's output places (the decode cache) is created, changed or removed:
  the inputs themselves, and a sentinel folder that hostile symbolic links point at, stay as they were;
- what is returned is sound: data sets have matching shapes and labels, and a second (cached) load
  equals the first; a spec that is accepted builds and gives one score per class; a run folder
  that loads predicts probabilities that are finite and sum to one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import struct
import tempfile
import time
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image

TIMEOUT = 20  # seconds one input may take
COUNTS: dict[str, int] = {}  # target name -> inputs tried (read by the long run)


class Hang(BaseException):
    """The call did not return in time (a BaseException, so no ``except Exception`` in the code hides it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------- the sandbox


def _snapshot(root: Path, skip: tuple[str, ...]) -> dict:
    """Every entry under ``root`` except the ``skip`` folders: kind, size, mtime and content digest."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        filenames = [f for f in filenames if os.path.normpath(os.path.join(rel_dir, f)) not in skip]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    digest = hashlib.blake2b(f.read(), digest_size=8).hexdigest()
            elif os.path.islink(path):
                digest = os.readlink(path)
            out[os.fsencode(os.path.relpath(path, root))] = (st_.st_mode, st_.st_size, st_.st_mtime_ns, digest)
    return out


@contextlib.contextmanager
def sandbox():
    """A fresh folder holding ``outside/`` (a sentinel), the decode cache ``cache/`` and room for inputs.

    On leaving, checks that nothing but ``cache/`` (and ``runs/``, where a target writes on purpose) changed.
    """
    with tempfile.TemporaryDirectory(prefix="seethrough-fuzz-") as tmp:
        root = Path(tmp)
        (root / "outside").mkdir()
        (root / "outside" / "sentinel.png").write_bytes(_png(np.full((4, 4, 3), 9, np.uint8)))
        old = os.environ.get("SEETHROUGH_CACHE")
        os.environ["SEETHROUGH_CACHE"] = str(root / "cache")
        try:
            yield root
            before = root / ".before"
            if before.exists():
                expected = json.loads(before.read_text())
                now = {k.hex(): list(v) for k, v in _snapshot(root, ("cache", "runs", ".before")).items()}
                changed = sorted(bytes.fromhex(k).decode("utf-8", "backslashreplace")
                                 for k in set(expected) ^ set(now) | {k for k in expected if expected[k] != now.get(k)})
                assert not changed, f"files outside the output places were touched: {changed[:5]}"
        finally:
            if old is None:
                os.environ.pop("SEETHROUGH_CACHE", None)
            else:
                os.environ["SEETHROUGH_CACHE"] = old
            for dirpath, dirnames, filenames in os.walk(root):  # let TemporaryDirectory remove everything
                for d in dirnames:
                    with contextlib.suppress(OSError):
                        os.chmod(os.path.join(dirpath, d), 0o755)


def freeze(root: Path) -> None:
    """Record the sandbox's state now: ``sandbox`` checks on exit that it did not change."""
    snap = {k.hex(): list(v) for k, v in _snapshot(root, ("cache", "runs", ".before")).items()}
    (root / ".before").write_text(json.dumps(snap))


# ---------------------------------------------------------------------- checks on what comes back


def one_line(exc: BaseException) -> None:
    from seethrough.errors import SeethroughError

    if not isinstance(exc, SeethroughError):
        raise exc  # a crash: the command line would print a traceback
    text = str(exc)
    assert text and "\n" not in text, f"error is not one line: {text!r}"
    text.encode("utf-8")  # printable on a UTF-8 terminal (no lone surrogates)


def check_warnings(caught) -> list[str]:
    """Every warning a one-line, printable SkippedImageWarning (anything else would reach the user
    without naming its file); returns their messages."""
    from seethrough.errors import SkippedImageWarning

    skips = []
    for w in caught:
        text = str(w.message)
        assert issubclass(w.category, SkippedImageWarning), f"an unnamed {w.category.__name__}: {text!r}"
        assert "\n" not in text, f"warning is not one line: {text!r}"
        text.encode("utf-8")
        skips.append(text)
    return skips


@contextlib.contextmanager
def guarded(name: str):
    """Count the input, bound its time, and turn a one-line SeethroughError into a normal end.

    A hang becomes an AssertionError here, so Hypothesis records and prints the input (it lets
    BaseExceptions through untouched); one the code swallowed is caught by the clock.
    """
    COUNTS[name] = COUNTS.get(name, 0) + 1
    start = time.monotonic()
    try:
        with time_limit(TIMEOUT):
            try:
                yield
            except Hang:
                raise
            except Exception as exc:  # noqa: BLE001 (checked: SeethroughError in one line, else re-raised)
                one_line(exc)
                COUNTS[f"{name}: refused"] = COUNTS.get(f"{name}: refused", 0) + 1
    except Hang as exc:
        raise AssertionError(f"hang: {exc}") from None
    took = time.monotonic() - start
    assert took < TIMEOUT, f"hang: took {took:.0f} s"


# ---------------------------------------------------------------------- image files


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F", "I;16"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO", "TGA"]


def make_image(fmt: str, mode: str, w: int, h: int, seed: int) -> bytes:
    """A valid file of ``fmt`` (falling back to PNG of RGB where Pillow cannot write that mode)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if mode == "P":
        img = img.quantize(8)
    elif mode == "PA":
        img = img.convert("RGBA").convert("PA")
    elif mode == "I":
        img = Image.fromarray(rng.integers(-70000, 70000, (h, w), dtype=np.int32), "I")
    elif mode == "F":
        img = Image.fromarray(rng.normal(0, 1000, (h, w)).astype(np.float32), "F")
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
    else:
        img = img.convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, fmt)
    except (OSError, ValueError, KeyError, TypeError):
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w`` x ``h`` pixels (a decompression bomb's header)."""
    data = bytearray(_png(np.zeros((1, 1, 3), np.uint8)))
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


SIDES = st.sampled_from([8, 8, 16, 5]) | st.integers(1, 24)  # a few common sizes, so votes on the size matter


@st.composite
def image_files(draw, valid: int = 2) -> dict:
    """A plan for one file: how to make its bytes (``valid``: the weight of a valid file among 7 kinds)."""
    kind = draw(st.sampled_from(["valid"] * valid + ["truncated", "mutated", "random", "empty", "bomb"]))
    plan = {"kind": kind}
    if kind == "random":
        plan["bytes"] = draw(st.binary(max_size=600))
    elif kind == "bomb":
        plan["claims"] = draw(st.sampled_from([(0, 5), (5, 0), (9000, 9000), (100_000, 100_000), (2**31 - 1, 1)]))
    elif kind != "empty":
        plan.update(fmt=draw(st.sampled_from(FORMATS)), mode=draw(st.sampled_from(MODES)),
                    w=draw(SIDES), h=draw(SIDES), seed=draw(st.integers(0, 99)))
        if kind == "truncated":
            plan["keep"] = draw(st.floats(0, 1))
        if kind == "mutated":
            plan["flips"] = draw(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=6))
    return plan


def image_bytes(plan: dict) -> bytes:
    kind = plan["kind"]
    if kind == "random":
        return plan["bytes"]
    if kind == "empty":
        return b""
    if kind == "bomb":
        return png_claiming(*plan["claims"])
    data = bytearray(make_image(plan["fmt"], plan["mode"], plan["w"], plan["h"], plan["seed"]))
    if kind == "truncated":
        return bytes(data[: int(len(data) * plan["keep"])])
    if kind == "mutated":
        for at, xor in plan["flips"]:
            data[min(int(at * len(data)), len(data) - 1)] ^= xor
    return bytes(data)


# ---------------------------------------------------------------------- image folders

NAMES = ["a.png", "b.jpg", "photo 1.png", "ünï.png", "x", ".hidden.png", "noext", "z.PNG", "é/é.png"]


@st.composite
def folder_entries(draw) -> dict:
    """A plan for one entry of a class folder."""
    kind = draw(st.sampled_from(["file"] * 10 + ["fifo", "link-file", "link-up", "link-self",
                                 "link-broken", "link-outside", "hidden-dir", "non-utf8", "subdir", "empty-dir"]))
    entry = {"kind": kind, "name": draw(st.sampled_from(NAMES)) + str(draw(st.integers(0, 5)))}
    if kind in ("file", "hidden-dir", "non-utf8", "subdir"):
        entry["file"] = draw(image_files(valid=6))
    return entry


@st.composite
def folders(draw) -> dict:
    """A plan for a data folder and the options it is loaded with."""
    n_classes = 1 if draw(st.integers(0, 9)) == 9 else draw(st.integers(2, 3))  # (Hypothesis favours small numbers)
    layout = draw(st.sampled_from(["flat", "flat", "split"]))
    splits = ["train", "test"] if layout == "split" else [""]
    classes = {}
    for split in splits:
        for c in range(n_classes):
            classes[f"{split}/c{c}" if split else f"c{c}"] = draw(st.lists(folder_entries(), min_size=1, max_size=6))
    size = None if draw(st.integers(0, 2)) < 2 else draw(st.sampled_from(["8", "5x7", 1, "0", "x", "3x4x5", "70000"]))
    return {"classes": classes, "size": size, "strict": draw(st.integers(0, 4)) == 4, "cache": draw(st.booleans()),
            "root_file": draw(st.booleans()),
            "edit": draw(st.sampled_from(["none", "same-size", "hidden", "add", "remove", "touch"]))}


def edit_folder(data: Path, edit: str) -> None:
    """Change the folder between two loads the way a user might; the cache must see it (or, for a
    hidden file, rightly ignore it)."""
    files = sorted(p for p in data.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_size > 40
                   and "/." not in str(p.relative_to(data)))
    classes = sorted(p for p in data.iterdir() if p.is_dir())
    if edit == "hidden" and classes:
        (classes[0] / ".thumbs").mkdir(exist_ok=True)
        (classes[0] / ".thumbs" / "new.png").write_bytes(make_image("PNG", "RGB", 9, 9, 5))
    elif edit == "add" and classes:
        (classes[-1] / "added.png").write_bytes(make_image("PNG", "L", 7, 7, 6))
    elif edit == "remove" and files:
        files[0].unlink()
    elif edit == "touch" and files:
        os.utime(files[0], ns=(0, 10**18))
    elif edit == "same-size" and files:  # new bytes, same size, same times
        st_ = files[0].stat()
        data_ = bytearray(files[0].read_bytes())
        data_[len(data_) // 2] ^= 0x55
        files[0].write_bytes(bytes(data_))
        os.utime(files[0], ns=(st_.st_atime_ns, st_.st_mtime_ns))


def _make_entry(folder: Path, entry: dict, root: Path) -> None:
    kind, name = entry["kind"], entry["name"]
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        return
    if kind == "file":
        path.write_bytes(image_bytes(entry["file"]))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-file":
        os.symlink(root / "outside" / "sentinel.png", path)
    elif kind == "link-up":
        os.symlink("..", path)
    elif kind == "link-self":
        os.symlink(name.rsplit("/", 1)[-1], path)
    elif kind == "link-broken":
        os.symlink("does-not-exist", path)
    elif kind == "link-outside":
        os.symlink(root / "outside", path)
    elif kind == "hidden-dir":
        (folder / ".thumbs").mkdir(exist_ok=True)
        (folder / ".thumbs" / "t.png").write_bytes(image_bytes(entry["file"]))
    elif kind == "non-utf8":
        with open(os.fsencode(folder) + b"/bad\xff" + name.encode()[-3:].replace(b"/", b"_"), "wb") as f:
            f.write(image_bytes(entry["file"]))
    elif kind == "subdir":
        (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
        (folder / "sub" / "deeper" / name.replace("/", "_")).write_bytes(image_bytes(entry["file"]))
    elif kind == "empty-dir":
        path.mkdir()


def build_folder(plan: dict, root: Path) -> Path:
    data = root / "data"
    data.mkdir()
    for cls, entries in plan["classes"].items():
        (data / cls).mkdir(parents=True, exist_ok=True)
        for entry in entries:
            _make_entry(data / cls, entry, root)
    if plan["root_file"]:
        (data / "README.txt").write_text("not a class")
    return data


def check_folder(plan: dict) -> None:
    """Load a hostile folder: a sound data set shaped by the files it kept, or one line; after an edit,
    a cached load equals a fresh decode (the cache never serves stale data)."""
    from seethrough.data import load_splits

    def load(cache):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parts = load_splits(str(data), size=plan["size"], strict=plan["strict"], cache=cache)
        check_warnings(caught)
        _check_splits(parts, plan["size"])
        return parts

    with sandbox() as root:
        data = build_folder(plan, root)
        freeze(root)
        with guarded("folder"):
            load(plan["cache"])
        if plan["cache"]:
            edit_folder(data, plan.get("edit", "none"))
            freeze(root)
            with guarded("folder (cached, after an edit)"):
                cached = load(True)
                fresh = load(False)
                for k in fresh:
                    assert cached[k].info["files"] == fresh[k].info["files"]
                    np.testing.assert_array_equal(cached[k].images, fresh[k].images)
                    np.testing.assert_array_equal(cached[k].labels, fresh[k].labels)


def _check_splits(parts: dict, size) -> None:
    assert set(parts) == {"train", "test"}
    shapes = {p.images.shape[1:] for p in parts.values()}
    assert len(shapes) == 1, shapes
    h, w, c = shapes.pop()
    assert h >= 1 and w >= 1 and c in (1, 3)
    kept = []
    for p in parts.values():
        assert p.images.dtype == np.uint8 and len(p.images) == len(p.labels) == len(p.info["files"])
        assert p.labels.min(initial=0) >= 0 and p.labels.max(initial=0) < len(p.class_names)
        assert len(p.class_names) >= 2
        for f in p.info["files"]:
            f.encode("utf-8")
            assert "/." not in f, f"a hidden file was read: {f}"
            kept.append(f)
    # the files kept, and only they, chose the size and the mode
    from seethrough.data.folder import GRAY_MODES

    headers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own, about files it reads anyway
        for f in kept:
            with Image.open(f) as img:
                headers.append((img.size[1], img.size[0], img.mode))
    sizes = Counter((hh, ww) for hh, ww, _ in headers)
    if size is None:
        assert sizes[(h, w)] == max(sizes.values()), f"{h}x{w} is not the most common size of the kept files {sizes}"
    assert c == (1 if all(m in GRAY_MODES for _, _, m in headers) else 3), (c, Counter(m for *_, m in headers))


def check_image_file(plan: dict, shape: tuple[int, int, int]) -> None:
    """One hostile file read for a model's input: the array, or one line."""
    from seethrough.data.images import load_image, load_images

    with sandbox() as root:
        path = root / "data" / "input"
        path.parent.mkdir()
        path.write_bytes(image_bytes(plan))
        good = root / "data" / "good.png"
        good.write_bytes(make_image("PNG", "RGB", 5, 5, 0))
        freeze(root)
        with guarded("image"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                images, kept, skipped = load_images([path, good], shape)
            assert images.shape == (len(kept), *shape) and images.dtype == np.uint8
            assert len(kept) + len(skipped) == 2 and good in kept
            assert len(check_warnings(caught)) == len(skipped)
            a = load_image(path, shape)
            assert a.shape == shape and a.dtype == np.uint8


# ---------------------------------------------------------------------- specs

ODD_VALUES = [-3, -1, 0, 1.5, 1e9, 10**9, 2**20, 2**40, float("nan"), float("inf"), "abc", "8", None,
              True, False, [], {}, [3], 0.5, 2.0, -0.5]
PLAUSIBLE = {"out": st.integers(1, 16), "k": st.integers(1, 5), "stride": st.integers(1, 3) | st.none(),
             "pad": st.integers(0, 2), "bias": st.booleans(), "eps": st.sampled_from([1e-5, 1e-3]),
             "momentum": st.sampled_from([0.1, 0.4]), "p": st.sampled_from([0.0, 0.3, 0.5])}
KIND_PARAMS = {"conv": ["out", "k", "stride", "pad", "bias"], "maxpool": ["k", "stride"], "avgpool": ["k", "stride"],
               "gap": [], "relu": [], "flatten": [], "linear": ["out", "bias"], "batchnorm": ["eps", "momentum"],
               "dropout": ["p"]}
ODD_NAMES = ["a.b", "", " ", "1x", "x" * 70, "ok_name", "é", None, 3, "conv1"]


@st.composite
def layers(draw):
    """One layer: mostly a known kind with plausible values, each part odd now and then."""
    kind = draw(st.sampled_from(list(KIND_PARAMS)) if draw(st.integers(0, 9)) else
                st.sampled_from(["softmax", "", "Conv", "conv ", 3, None]))
    params = {}
    for name in KIND_PARAMS.get(kind, []):
        if draw(st.booleans()) or name == "out":
            odd = draw(st.integers(0, 5)) == 0
            params[name] = draw(st.sampled_from(ODD_VALUES)) if odd else draw(PLAUSIBLE[name])
    if draw(st.integers(0, 9)) == 0:
        params[draw(st.sampled_from(["x", "type", "kind", "K", "name"]))] = draw(st.sampled_from(ODD_VALUES))
    if draw(st.integers(0, 5)) == 0:
        params["name"] = draw(st.sampled_from(ODD_NAMES))
    if isinstance(kind, str) and draw(st.booleans()):  # the text form
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{kind}({args})" if params or draw(st.booleans()) else kind
    return {"type": kind, **params}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=4),
                           max_leaves=12)


@st.composite
def specs(draw):
    """A plan for a spec file: its JSON text, and the input shape and class count it meets."""
    form = draw(st.sampled_from(["layers", "layers", "layers", "json", "deep", "text"]))
    classes = draw(st.integers(2, 12))
    if form == "layers":
        body = draw(st.lists(layers(), max_size=7))
        if draw(st.integers(0, 3)):  # usually a proper head, so the odd values above are reached
            body = body + ["flatten", f"linear(out={classes if draw(st.integers(0, 4)) else classes + 1})"]
        text = json.dumps({"layers": body} if draw(st.booleans()) else body)
    elif form == "json":
        text = json.dumps(draw(json_values))
    elif form == "deep":
        n = draw(st.sampled_from([10, 1000, 100_000]))
        text = "[" * n + "]" * n
    else:
        text = draw(st.text(max_size=60))
    shape = (draw(st.sampled_from([1, 3])), draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    return {"text": text, "in_shape": shape, "classes": classes}


def check_spec(plan: dict) -> None:
    """A hostile spec file: refused in one line, or it builds and gives one score per class."""
    import torch

    from seethrough.models import build_torch, create_spec

    with sandbox() as root:
        path = root / "data" / "spec.json"
        path.parent.mkdir()
        path.write_text(plan["text"])
        freeze(root)
        with guarded("spec"):
            spec = create_spec(str(path), plan["in_shape"], plan["classes"])
            net = build_torch(spec, plan["in_shape"]).eval()
            with torch.no_grad():
                out = net(torch.zeros(2, *plan["in_shape"]))
            assert tuple(out.shape) == (2, plan["classes"]), out.shape


# ---------------------------------------------------------------------- model.json


@st.composite
def model_jsons(draw):
    """A plan for a run folder: the edits made to a valid model.json."""
    keys = ["spec", "input_shape", "class_names", "preprocess", "format", "format_version", "model"]
    odd = {
        "spec": st.sampled_from([[], "logreg", [{"type": "linear", "out": 3}], [{"type": "flatten"}]]) | json_values,
        "input_shape": st.sampled_from([[8, 8], [8, 8, 2], [8, 8, 3], [0, 8, 1], [8, 8, 1, 1], "8x8x1", [8.0, 8, 1],
                                        [10**6, 10**6, 1]]) | json_values,
        "class_names": st.sampled_from([["a", "b"], ["a", "b", "c", "d"], "abc", [1, 2, 3], [], ["a", "b", None]])
        | json_values,
        "preprocess": st.sampled_from(["standard", {"mean": [0.0], "std": [0.0]}, {"mean": [0.0], "std": [-1.0]},
                                       {"mean": [float("nan")], "std": [1.0]}, {"mean": [0, 0], "std": [1, 1]},
                                       {"mean": [0.0]}, {"mean": [0.0], "std": [1e-30]}]) | json_values,
    }
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            edits.append([key, "delete"])
        else:
            edits.append([key, draw(odd.get(key, json_values))])
    return {"edits": edits, "weights": draw(st.sampled_from(["keep", "keep", "truncate", "nan", "empty", "random"]))}


def build_run(plan: dict, root: Path) -> Path:
    import torch

    from seethrough.trained import Preprocess, TrainedModel

    torch.manual_seed(0)
    run = TrainedModel(["flatten", "linear(out=3)"], (8, 8, 1), ["a", "b", "c"], Preprocess.unit(1),
                       meta={"model": "logreg"}).save(root / "data" / "run")
    info = json.loads((run / "model.json").read_text())
    for key, value in plan["edits"]:
        if value == "delete":
            info.pop(key, None)
        else:
            info[key] = value
    (run / "model.json").write_text(json.dumps(info))
    weights = run / "model.safetensors"
    data = weights.read_bytes()
    if plan["weights"] == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif plan["weights"] == "nan":
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        state["linear1.bias"] = torch.full_like(state["linear1.bias"], float("nan"))
        save_file(state, str(weights))
    elif plan["weights"] == "empty":
        weights.write_bytes(b"")
    elif plan["weights"] == "random":
        weights.write_bytes(np.random.default_rng(len(data)).integers(0, 256, 200, np.uint8).tobytes())
    return run


def check_model_json(plan: dict) -> None:
    """A hostile run folder: refused in one line, or it predicts finite probabilities summing to one."""
    from seethrough.trained import TrainedModel

    with sandbox() as root:
        run = build_run(plan, root)
        freeze(root)
        with guarded("model.json"):
            model = TrainedModel.load(run)
            images = np.random.default_rng(0).integers(0, 256, (2, *model.input_shape), dtype=np.uint8)
            p = model.predict_proba(images)
            assert p.shape == (2, len(model.class_names)) and np.isfinite(p).all()
            np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)


def check_predict_cli(plan: dict) -> None:
    """``seethrough predict RUN FILE FILE``: exit 0 or 2, never a traceback."""
    from seethrough.cli import main

    with sandbox() as root:
        run = build_run({"edits": [], "weights": "keep"}, root)
        bad = root / "data" / "input.png"
        bad.write_bytes(image_bytes(plan))
        good = root / "data" / "good.png"
        good.write_bytes(make_image("PNG", "L", 8, 8, 1))
        freeze(root)
        err = io.StringIO()
        with guarded("predict"), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            code = main(["predict", str(run), str(bad), str(good), "--json"])
        assert code == 0, (code, err.getvalue())  # the good file is always predicted
        assert "Traceback" not in err.getvalue()

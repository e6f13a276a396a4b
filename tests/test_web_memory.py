"""Uploads decoded in bounded memory: the cost estimate, the shrinking decoder, the budget.

Oracles: the peak resident memory a decoding really takes (measured in a forked child),
the shared conversion rule run on the fully decoded image, and a count of bytes held at once.
"""

from __future__ import annotations

import io
import os
import resource
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image, ImageFile  # noqa: E402
from test_web_api import LOCAL, web_runs  # noqa: E402,F401  (the session fixture: two runs trained on digits)

from seethrough.data.images import image_to_array  # noqa: E402
from seethrough.web.budget import MemoryBudget  # noqa: E402
from seethrough.web.uploads import UploadError, decode_cost, decode_image, open_upload  # noqa: E402

MiB = 2**20


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def smooth(h: int, w: int, c: int) -> np.ndarray:
    """A photo-like image: slow waves, no detail near the pixel size."""
    y, x = np.mgrid[0:h, 0:w]
    chans = [np.sin(x / 170.0 + k) * np.cos(y / 130.0 - k) * 110 + 128 for k in range(c)]
    return np.stack(chans, -1).astype(np.uint8)


def big_rgba_png(side: int = 3999) -> bytes:
    """The case the issue measured: a tiny PNG (tens of KB) that decodes to 4 bytes a pixel."""
    a = np.zeros((side, side, 4), np.uint8)
    a[..., 3] = 200
    a[::500, :, 0] = 255
    return encode(Image.fromarray(a, "RGBA"), "PNG")


def exif(orientation: int) -> Image.Exif:
    e = Image.Exif()
    e[0x0112] = orientation
    return e


IMAGES = {
    "rgba-png": lambda: encode(Image.fromarray(smooth(1200, 1700, 4), "RGBA"), "PNG"),
    "jpeg-rotated": lambda: encode(Image.fromarray(smooth(900, 1600, 3)), "JPEG", quality=95, exif=exif(6)),
    "palette-transparent": lambda: encode(Image.fromarray(smooth(800, 1000, 3)).quantize(64), "PNG", transparency=3),
    "16-bit": lambda: encode(Image.fromarray(smooth(1000, 1000, 1)[..., 0].astype(np.uint16) * 257), "PNG"),
    "float-tiff": lambda: encode(Image.fromarray(smooth(700, 900, 1)[..., 0].astype(np.float32) * 3.7), "TIFF"),
    "cmyk-jpeg": lambda: encode(Image.fromarray(smooth(1000, 1000, 3)).convert("CMYK"), "JPEG", quality=95),
    "gray-gif": lambda: encode(Image.fromarray(smooth(1000, 700, 1)[..., 0]), "GIF"),
}


def full_rule(data: bytes, shape) -> np.ndarray:
    """The oracle: the shared rule on the image decoded at full size (what `predict` does)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return image_to_array(img, shape).astype(int)


# ---------------------------------------------------------------------------- the shrinking decoder
@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
def test_shrinking_while_decoding_keeps_the_rules_answer(name, shape):
    data = IMAGES[name]()
    got = decode_image(data, None, shape).astype(int)
    want = full_rule(data, shape)
    assert got.shape == want.shape == shape and got.dtype == int
    diff = np.abs(got - want)
    assert diff.mean() < 1.5 and diff.max() <= 6, (name, diff.mean(), diff.max())


def test_a_rotated_jpeg_is_turned_before_it_is_shrunk():
    a = np.zeros((1200, 1200, 3), np.uint8)
    a[:300] = 255  # a white band on top, as stored
    data = encode(Image.fromarray(a), "JPEG", quality=95, exif=exif(6))  # 6: turn 90 degrees clockwise to show
    got = decode_image(data, None, (16, 16, 1))[..., 0]
    assert got[:, -2:].mean() > 200 and got[:, :6].mean() < 10  # the band now stands at the right
    np.testing.assert_allclose(got, full_rule(data, (16, 16, 1))[..., 0], atol=3)


def test_an_image_already_small_is_not_shrunk():
    data = encode(Image.fromarray(smooth(40, 40, 3)), "PNG")
    np.testing.assert_array_equal(decode_image(data, None, (8, 8, 3)), full_rule(data, (8, 8, 3)))


# ---------------------------------------------------------------------------- the estimate
def _peak_in_child(data: bytes, shape) -> float:
    """MiB the resident set grows by while a forked child decodes ``data``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: decode, report, leave without running any of pytest's cleanup
        try:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with open("/proc/self/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            decode_image(data, None, shape)
            grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max(start, rss)
            os.write(write, str(grew / 1024).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return float(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and forks")
@pytest.mark.parametrize("name", ["rgba-png", "jpeg-rotated", "16-bit", "float-tiff", "big-rgba"])
def test_the_estimate_covers_what_decoding_really_takes(name):
    data = big_rgba_png() if name == "big-rgba" else IMAGES[name]()
    shape = (32, 32, 3)
    img = open_upload(data, None)
    if img.format == "JPEG":  # as decode_image does before estimating
        from seethrough.web.uploads import _file_target, _wanted_size

        img.draft(None, _wanted_size(img.size, _file_target(img, shape)))
    estimate = decode_cost(img, shape) / MiB
    measured = _peak_in_child(data, shape)
    assert measured <= estimate, f"{name}: decoding took {measured:.1f} MiB, estimated {estimate:.1f} MiB"


def test_the_big_png_costs_about_its_pixels_not_five_copies():
    img = open_upload(big_rgba_png(), None)
    cost = decode_cost(img, (8, 8, 1))
    assert 3999 * 3999 * 4 < cost < 1.3 * 3999 * 3999 * 4  # was 366 MiB measured before shrinking


def test_nothing_is_decoded_before_the_memory_is_reserved(monkeypatch):
    budget = MemoryBudget(512 * MiB)
    held_when_loading = []
    load = ImageFile.ImageFile.load

    def spying_load(self):
        held_when_loading.append(budget.used)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying_load)
    for name in ("rgba-png", "jpeg-rotated", "16-bit"):
        decode_image(IMAGES[name](), None, (8, 8, 1), budget=budget)
    assert held_when_loading and all(n > 0 for n in held_when_loading)
    assert budget.used == 0


# ---------------------------------------------------------------------------- the budget
def test_an_image_over_the_whole_budget_is_413():
    with pytest.raises(UploadError) as err:
        decode_image(big_rgba_png(), None, (8, 8, 1), budget=MemoryBudget(32 * MiB))
    assert err.value.status == 413 and "--max-memory-mb" in err.value.message


def test_the_budget_never_holds_more_than_its_total():
    budget = MemoryBudget(100, wait_s=60, release=False)
    held, most, lock = [0], [0], threading.Lock()
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 51, size=40).tolist()

    def work(n):
        with budget.reserve(n):
            with lock:
                held[0] += n
                most[0] = max(most[0], held[0])
            time.sleep(0.02)
            with lock:
                held[0] -= n

    threads = [threading.Thread(target=work, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] <= 100 and budget.peak <= 100 and budget.used == 0
    assert most[0] > max(sizes)  # and it did let several run at once


def test_a_request_that_waits_too_long_is_503():
    budget = MemoryBudget(100, wait_s=0.2, release=False)
    with budget.reserve(80):
        with pytest.raises(UploadError) as err:
            with budget.reserve(30):
                pass
    assert err.value.status == 503
    with budget.reserve(100):  # and the refused one left nothing behind
        assert budget.used == 100


# ---------------------------------------------------------------------------- through the app
def test_the_app_refuses_an_image_over_its_memory_and_serves_the_next(web_runs):  # noqa: F811
    from seethrough.web import create_app

    app = create_app([web_runs["logreg"]], max_memory=32 * MiB)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        r = c.post("/api/models/logreg/predict", files={"image": ("big.png", big_rgba_png(), "image/png")})
        assert r.status_code == 413 and "MiB" in r.json()["message"]
        ok = c.post("/api/models/logreg/predict",
                    files={"image": ("a.png", encode(Image.fromarray(smooth(600, 600, 4), "RGBA"), "PNG"), "image/png")})
        assert ok.status_code == 200 and "prediction" in ok.json()
    assert app.state.budget.used == 0


def test_concurrent_big_uploads_stay_inside_the_budget(web_runs):  # noqa: F811
    from seethrough.web import create_app

    app = create_app([web_runs["logreg"]], max_memory=160 * MiB)
    data = big_rgba_png(2500)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        codes = []

        def send():
            codes.append(c.post("/api/models/logreg/predict", files={"image": ("b.png", data, "image/png")}).status_code)

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert codes == [200] * 6
    budget = app.state.budget
    one = decode_cost(open_upload(data, None), (8, 8, 1))
    assert budget.peak <= budget.total and budget.peak >= 2 * one and budget.used == 0


def test_serve_passes_its_memory_limit_and_hosts(web_runs, monkeypatch):  # noqa: F811
    import uvicorn
    from click.testing import CliRunner

    from seethrough.cli import cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr("seethrough.web.budget.map_large_blocks", lambda: True)  # not in the test process
    r = CliRunner().invoke(cli, ["serve", str(web_runs["logreg"]), "--max-memory-mb", "64",
                                 "--allow-host", "my-laptop.lan"])
    assert r.exit_code == 0, r.output
    assert seen["app"].state.budget.total == 64 * MiB
    with TestClient(seen["app"], base_url="http://my-laptop.lan:8000") as c:
        assert c.get("/api/models").status_code == 200

"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

The server runs in a thread on a free loopback port; the browser uploads a digit and
checks the page shows the class the model predicts, opens a layer's feature maps and the
arithmetic of one value, switches the explanation method, compares two runs, and keeps a
screenshot in test-artifacts/. No browser is downloaded: Playwright drives /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from PIL import Image  # noqa: E402
from test_web_api import web_runs  # noqa: E402,F401  (the session fixture: two runs trained on digits)

from conftest import loopback_works  # noqa: E402
from seethrough.data import load_splits  # noqa: E402
from seethrough.trained import TrainedModel  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def find_chromium() -> str:
    """Chromium's path; skips the test without it, or without TCP over 127.0.0.1 for the page's server."""
    if not loopback_works():
        pytest.skip("no TCP over 127.0.0.1 on this machine: the page's server cannot be reached")
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium not found at /usr/bin/chromium and 'make browser' (run by make setup and "
                "make test) could not install it: it needs root and apt-get (apt-get install -y chromium)")


def serve(app):
    """Run ``app`` on a free loopback port in a thread; returns (url, stop)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free port, held from now on: no race with other processes
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start within 20 s")
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(15)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


@pytest.fixture(scope="module")
def server_url(web_runs):  # noqa: F811
    from seethrough.web import create_app

    url, stop = serve(create_app([web_runs["cnn"], web_runs["logreg"]]))
    yield url
    stop()


@pytest.fixture(scope="module")
def page(server_url):
    exe = find_chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1300, "height": 1800})
        pg.set_default_timeout(20_000)
        errors, outside = [], []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.route(lambda url: not url.startswith(server_url) and not url.startswith("data:"),
                 lambda route: (outside.append(route.request.url), route.abort()))
        pg.goto(server_url)
        yield pg
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"
        assert not outside, f"the page asked for something beyond the server: {outside}"


def test_the_page_shows_an_image_flowing_through_the_model(page, web_runs, tmp_path):  # noqa: F811
    expect = sync_api.expect
    digit = load_splits("digits")["test"].images[5, ..., 0]
    upload = tmp_path / "digit.png"
    Image.fromarray(digit).resize((64, 64), Image.Resampling.NEAREST).save(upload)
    model = TrainedModel.load(web_runs["cnn"])
    expected = model.class_names[int(model.predict(np.array(model.to_input(upload))[None])[0])]

    # the CNN is the first model; its explanation methods show it is loaded
    expect(page.locator("#model-select")).to_have_value("cnn")
    expect(page.locator("#method-select option[value=gradcam]")).to_have_count(1)
    page.set_input_files("#file-input", str(upload))
    expect(page.locator("#prediction")).to_have_text(expected)
    expect(page.locator("#bars .bar.top")).to_have_count(3)

    # a layer's feature maps, then one map, its kernel and the arithmetic at a position
    page.click('.layer[data-layer="conv1"]')
    expect(page.locator("#maps .map")).to_have_count(4)
    page.click('#maps .map[data-channel="2"]')
    expect(page.locator("#kernel canvas")).to_have_count(1)
    page.click("#detail-map", position={"x": 100, "y": 100})
    expect(page.locator("#arith-total")).to_contain_text("PyTorch's feature map")

    # switching the explanation method redraws the overlay and its scores
    expect(page.locator("#explain-caption")).to_contain_text("gradcam")
    page.select_option("#method-select", "saliency")
    expect(page.locator("#explain-caption")).to_contain_text("saliency")
    expect(page.locator("#faithfulness")).to_contain_text("deletion area")

    # two runs side by side on the same image
    page.select_option("#compare-select", "logreg")
    expect(page.locator("#compare .side")).to_have_count(2)
    expect(page.locator("#compare .side").first.locator(".compare-prediction")).to_have_text(expected)

    # clicking another class explains that class
    other = model.class_names[int(np.argsort(-model.predict_proba(np.array(model.to_input(upload))[None])[0])[1])]
    page.click(f'#bars .label[data-class="{model.class_names.index(other)}"]')
    expect(page.locator("#explain-caption")).to_contain_text(f"for class {other}")

    expect(page.locator("#error")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


def test_a_drawing_is_predicted(page):
    box = page.locator("#draw").bounding_box()
    page.click("#draw-clear")
    page.mouse.move(box["x"] + 110, box["y"] + 40)
    page.mouse.down()
    for y in range(40, 190, 10):  # a vertical stroke: a "1"
        page.mouse.move(box["x"] + 112, box["y"] + y)
    page.mouse.up()
    page.click("#draw-use")
    sync_api.expect(page.locator("#truth")).to_contain_text("your drawing")
    sync_api.expect(page.locator("#prediction")).not_to_be_empty()
    sync_api.expect(page.locator("#error")).to_be_hidden()


def test_a_file_that_is_not_an_image_shows_the_servers_message(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not really a picture")
    page.set_input_files("#file-input", str(bad))
    sync_api.expect(page.locator("#error")).to_contain_text("not an image in an accepted format")


def test_the_api_documentation_renders_offline(page, server_url):
    page.goto(f"{server_url}/docs")
    sync_api.expect(page.locator('[data-path="/api/models/{model_id}/predict"]')).to_have_count(1)
    page.goto(server_url)

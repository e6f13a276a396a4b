"""Training from the page, in a real browser: Debian's Chromium, headless, driven by Playwright.

A server with an empty workspace runs in a thread, under a strict Content-Security-Policy
(no inline code, nothing from elsewhere). The browser builds a three-class data set from
generated images (files and a zip) and from Chromium's fake camera, starts a training, sees
its epochs arrive, queues a second one, cancels the first, reloads the page while the second
runs and finds it again, then predicts and explains with the new run and downloads its
folder as a zip, which the library loads. A second test checks the explorer's fixes at
420 px wide. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import re
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from shapes import shape_pngs  # noqa: E402
from test_web_api import web_runs  # noqa: E402,F401  (the session fixture: two runs trained on digits)
from test_web_browser import ARTIFACTS, CHROMIUM_ARGS, find_chromium  # noqa: E402
from test_web_browser import serve as serve_app  # noqa: E402

from seethrough.trained import TrainedModel  # noqa: E402

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # as strict as serve's
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


class StrictCSP:
    """ASGI middleware: every response carries :data:`CSP`, so a page that needs inline code breaks."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with_csp(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", CSP.encode())]
            await send(message)

        await self.app(scope, receive, send_with_csp)


def serve(app):
    """Run ``app`` under the strict CSP on a free loopback port in a thread; returns (url, stop)."""
    return serve_app(StrictCSP(app))


def open_page(p, url, width=1300, height=1800):
    browser = p.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS + FAKE_CAMERA)
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.grant_permissions(["camera"], origin=url)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    problems = []
    pg.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    pg.on("console", lambda msg: problems.append(f"console: {msg.text}")
          if msg.type == "error" or "Content Security Policy" in msg.text else None)
    pg.route(lambda u: not u.startswith(url) and not u.startswith(("data:", "blob:")),
             lambda route: (problems.append(f"outside: {route.request.url}"), route.abort()))
    return browser, pg, problems


def card(page, name):
    return page.locator(f'.class-card[data-class="{name}"]')


def test_build_a_data_set_train_cancel_reload_and_look_inside(tmp_path):
    from seethrough.web import create_app

    expect = sync_api.expect
    files = shape_pngs(14, side=48, seed=3)
    for kind, pngs in files.items():
        (tmp_path / kind).mkdir()
        for i, data in enumerate(pngs):
            (tmp_path / kind / f"{i}.png").write_bytes(data)
    archive = tmp_path / "squares.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, data in enumerate(files["square"]):
            zf.writestr(f"../../outside-{i}.png", data)  # names that try to leave the folder: never used
        zf.writestr("notes.txt", "not an image")
    workspace = tmp_path / "workspace"
    app = create_app([], workspace=workspace)
    url, stop = serve(app)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser, page, problems = open_page(p, url)
            page.goto(url)
            # an empty workspace: no explorer, the demo offered
            expect(page.locator("#demo-offer")).to_be_visible()
            expect(page.locator("#explorer")).to_be_hidden()

            # three classes: generated circles as files, squares as a zip, frames of the fake camera
            for name in ("circle", "square", "camera"):
                page.fill("#class-name", name)
                page.click("#class-add")
                expect(card(page, name)).to_have_count(1)
            card(page, "circle").locator("input.add-files").set_input_files(
                [str(tmp_path / "circle" / f"{i}.png") for i in range(14)])
            expect(card(page, "circle").locator(".count")).to_have_text("14 images")
            card(page, "square").locator("input.add-zip").set_input_files(str(archive))
            expect(card(page, "square").locator(".count")).to_have_text("14 images")
            expect(page.locator("#error")).to_contain_text("not images")  # notes.txt, skipped and said so
            page.click("#cam-start")
            expect(page.locator("#cam")).to_be_visible()
            rec = card(page, "camera").locator("button.rec")
            rec.hover()
            page.mouse.down()
            expect(rec).to_have_text(re.compile(r"recording: ([89]|\d\d+)$"))
            page.mouse.up()
            expect(card(page, "camera").locator(".class-thumbs img")).not_to_have_count(0)
            n_camera = int(card(page, "camera").locator(".count").inner_text().split()[0])
            assert n_camera >= 8
            # a drawing, added and removed again
            box = page.locator("#ds-draw").bounding_box()
            page.mouse.move(box["x"] + 30, box["y"] + 30)
            page.mouse.down()
            page.mouse.move(box["x"] + 120, box["y"] + 120, steps=8)
            page.mouse.up()
            card(page, "circle").locator("button.add-drawing").click()
            expect(card(page, "circle").locator(".count")).to_have_text("15 images")
            card(page, "circle").locator(".class-thumbs img").first.click()  # the newest: the drawing
            expect(card(page, "circle").locator(".count")).to_have_text("14 images")
            page.screenshot(path=str(ARTIFACTS / "train-data-set.png"), full_page=True)

            # stored under names the server made, inside the workspace only
            stored = sorted(p.name for p in (workspace / "dataset").rglob("*") if p.is_file())
            assert len(stored) == 28 + n_camera
            assert all(len(n) == 36 and n.endswith(".png") for n in stored)
            assert not list(tmp_path.rglob("outside-*"))

            # a long training: its epochs arrive; a second waits in line; the first is cancelled
            page.select_option("#train-model", "smallcnn")
            page.fill("#train-epochs", "200")
            page.select_option("#train-size", "128")  # the largest: long enough to queue a second and cancel
            page.click("#train-start")
            first = page.locator('.job[data-job="t1"]')
            expect(first.locator(".job-line")).to_contain_text(re.compile(r"epoch ([2-9]|[1-9]\d+)/200"),
                                                               timeout=120_000)
            expect(first.locator("svg.curves polyline")).not_to_have_count(0)
            page.fill("#train-epochs", "8")
            page.select_option("#train-size", "32")
            page.click("#train-start")
            second = page.locator('.job[data-job="t2"]')
            expect(second.locator(".job-status")).to_contain_text("place 1 in line")
            page.screenshot(path=str(ARTIFACTS / "train-progress.png"), full_page=True)
            first.locator("button.cancel").click()
            expect(first.locator(".job-status")).to_have_text("cancelled", timeout=120_000)

            # reloading while the second runs finds it again, with its progress
            expect(second.locator(".job-status")).to_contain_text("training", timeout=60_000)
            page.reload()
            second = page.locator('.job[data-job="t2"]')
            expect(second).to_have_count(1)
            expect(second.locator(".job-status")).to_contain_text("done", timeout=180_000)
            expect(second.locator("svg.curves")).to_have_count(1)
            assert second.locator(".job-line").inner_text().startswith("epoch 8/8")
            page.screenshot(path=str(ARTIFACTS / "train-done.png"), full_page=True)

            # the cancelled run left nothing; the finished one is an ordinary run folder
            runs = [p for p in (workspace / "runs").iterdir() if p.is_dir()]
            assert len(runs) == 1 and runs[0].name.startswith("camera-circle-square-smallcnn")
            run_dir = runs[0]
            for name in ("model.json", "model.safetensors", "metrics.jsonl", "evaluation.json", "confusion.png"):
                assert (run_dir / name).is_file(), name

            # the reloaded page still knows the training as its own and, at its end, opened its run
            expect(page.locator("#model-select")).to_have_value(run_dir.name)
            assert "t2" in page.evaluate("sessionStorage.getItem('seethrough.mine')")
            assert page.evaluate("sessionStorage.getItem('seethrough.awaiting')") == "[]"   # its end was shown

            # look inside: a test image of its held-out part, the prediction and an explanation
            second.locator("button.open-run").click()
            expect(page.locator("#model-select")).to_have_value(run_dir.name)
            expect(page.locator("#tests img")).not_to_have_count(0)
            page.locator("#tests img").first.click()
            model = TrainedModel.load(run_dir)
            expect(page.locator("#prediction")).to_have_text(re.compile("^(camera|circle|square)$"))
            expect(page.locator("#explain-caption")).to_contain_text("gradcam")
            expect(page.locator("#faithfulness")).to_contain_text("deletion area")
            page.click('.layer[data-layer="conv1"]')
            expect(page.locator("#maps .map")).not_to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "train-look-inside.png"), full_page=True)

            # the run folder as a zip: the library loads it and predicts as the server does
            with page.expect_download() as dl:
                page.click("#model-zip")
            unpacked = tmp_path / "unzipped"
            zipfile.ZipFile(dl.value.path()).extractall(unpacked)
            copy = TrainedModel.load(unpacked / run_dir.name)
            x = np.stack([model.to_input(tmp_path / "circle" / f"{i}.png") for i in range(5)])
            np.testing.assert_allclose(copy.predict_proba(x), model.predict_proba(x), atol=1e-6)
            browser.close()
            assert not problems, problems
    finally:
        stop()


def test_the_explorer_fixes_at_420_px(web_runs, tmp_path):  # noqa: F811
    from seethrough.data import load_splits
    from PIL import Image

    expect = sync_api.expect
    digit = load_splits("digits")["test"].images[5, ..., 0]
    upload = tmp_path / "digit.png"
    Image.fromarray(digit).resize((64, 64), Image.Resampling.NEAREST).save(upload)
    url, stop = serve(__import__("seethrough.web", fromlist=["create_app"]).create_app(
        [web_runs["cnn"], web_runs["logreg"]], workspace=tmp_path / "ws"))
    try:
        with sync_api.sync_playwright() as p:
            browser, page, problems = open_page(p, url, width=420, height=1600)
            page.goto(url)
            expect(page.locator("#model-select")).to_have_value("cnn")
            # "compare with" offers the other runs only, and starts at none
            expect(page.locator("#compare-select")).to_have_value("")
            expect(page.locator('#compare-select option[value="cnn"]')).to_have_count(0)
            page.set_input_files("#file-input", str(upload))
            expect(page.locator("#prediction")).not_to_be_empty()
            # no kernel box before a layer and a map are chosen
            expect(page.locator("#kernel-box")).to_be_hidden()
            page.click('.layer[data-layer="conv1"]')
            page.click('#maps .map[data-channel="1"]')
            expect(page.locator("#kernel-box")).to_be_visible()
            page.click("#detail-map", position={"x": 30, "y": 40})
            expect(page.locator("#marker")).to_be_visible()
            expect(page.locator("#arith-total")).to_contain_text("PyTorch")
            # another layer: the previous detail goes; a flat layer shows its numbers
            page.click('.layer[data-layer="flatten1"]')
            expect(page.locator("#detail-box")).to_be_hidden()
            expect(page.locator("#maps .values .num")).not_to_have_count(0)
            last = TrainedModel.load(web_runs["cnn"]).spec[-1].name
            page.click(f'.layer[data-layer="{last}"]')
            expect(page.locator("#maps-title")).to_contain_text("logits")
            expect(page.locator("#maps .values .label")).to_have_count(10)
            # a bar, not only its label, picks the class to explain
            page.locator('#bars .bar-cell[data-class="7"]').click()
            expect(page.locator("#explain-caption")).to_contain_text("for class 7")
            # the compared run uses the chosen method where it has it
            page.select_option("#method-select", "saliency")
            page.select_option("#compare-select", "logreg")
            expect(page.locator("#compare .compare-caption").nth(1)).to_contain_text("saliency")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 420, f"the page is {width} px wide at a 420 px window"
            page.screenshot(path=str(ARTIFACTS / "web-page-420px.png"), full_page=True)
            # an error takes the previous prediction off the screen
            bad = tmp_path / "notes.png"
            bad.write_text("not a picture")
            page.set_input_files("#file-input", str(bad))
            expect(page.locator("#error")).to_contain_text("not an image")
            expect(page.locator("#prediction-panel")).to_be_hidden()
            browser.close()
            problems = [p for p in problems if "400" not in p and "415" not in p]  # the refused upload
            assert not problems, problems
    finally:
        stop()

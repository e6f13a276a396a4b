"""The page and the /docs page work under the server's Content-Security-Policy, in headless
Chromium: no script, style or request of theirs is blocked (Chromium reports each block as a
console error), and what they show still comes from the server."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

from test_web_api import web_runs  # noqa: E402,F401
from test_web_browser import CHROMIUM_ARGS, find_chromium, server_url  # noqa: E402,F401


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url):
    pg = browser.new_page(viewport={"width": 1300, "height": 1600})
    pg.set_default_timeout(20_000)
    blocked = []
    pg.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    pg.goto(url)
    return pg, blocked


def test_the_page_works_under_its_policy(browser, server_url):  # noqa: F811
    pg, blocked = open_page(browser, server_url)
    pg.locator("#tests > *").first.click()
    sync_api.expect(pg.locator("#prediction")).not_to_be_empty()
    widths = pg.eval_on_selector_all(".bar", "bars => bars.map(b => b.style.width)")
    assert any(w and w != "0.0%" for w in widths)  # the bars' widths are set, through the CSSOM
    pg.close()
    assert not blocked, blocked


def test_the_docs_work_under_their_policy(browser, server_url):  # noqa: F811
    pg, blocked = open_page(browser, f"{server_url}/docs")
    op = pg.locator('[data-path="/api/models"]').first
    op.click()
    pg.get_by_role("button", name="Try it out").first.click()
    pg.get_by_role("button", name="Execute").first.click()
    sync_api.expect(pg.locator(".live-responses-table tbody .response-col_status").first).to_contain_text("200")
    sync_api.expect(pg.locator(".live-responses-table tbody .response-col_description").first).to_contain_text("logreg")
    pg.close()
    assert not blocked, blocked

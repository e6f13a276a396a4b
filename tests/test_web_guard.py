"""The server trusts only its own host: Host checks, cross-site refusals, security headers.

Through FastAPI's TestClient (the headers a browser would send, set by hand), and in headless
Chromium for the Content-Security-Policy: the page and the /docs page must work under it.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from test_web_api import LOCAL, big_digit, digits_test, png_bytes, web_runs  # noqa: E402,F401

from seethrough.web.guard import content_security_policy, cross_site, host_name  # noqa: E402


@pytest.fixture(scope="module")
def app(web_runs):  # noqa: F811
    from seethrough.web import create_app

    return create_app([web_runs["logreg"]], hosts=["192.168.1.20", "my-laptop.lan"])


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        yield c


def predict(client, digits_test, **headers):  # noqa: F811
    return client.post("/api/models/logreg/predict", headers=headers,
                       files={"image": ("d.png", png_bytes(big_digit(digits_test)), "image/png")})


# ---------------------------------------------------------------------------- Host (DNS rebinding)
@pytest.mark.parametrize("host, name", [("127.0.0.1:8000", "127.0.0.1"), ("LOCALHOST", "localhost"),
                                        ("[::1]:8000", "::1"), ("::1", "::1"), ("localhost.:80", "localhost"),
                                        ("evil.example:8000", "evil.example"), ("", "")])
def test_host_name_is_the_name_alone(host, name):
    assert host_name(host) == name


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "[::1]:8000",
                                  "192.168.1.20:8000", "my-laptop.lan"])
def test_the_servers_own_names_are_served(client, host):
    r = client.get("/api/models", headers={"host": host})
    assert r.status_code == 200 and r.json()[0]["id"] == "logreg"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "10.0.0.1:8000", "[::2]:8000", ""])
@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/api/models"), ("POST", "/api/models/logreg/predict")])
def test_a_foreign_host_is_refused_before_anything_else(client, host, method, path):
    r = client.request(method, path, headers={"host": host}, data={"test_index": "0"})
    assert r.status_code == 400
    assert r.json()["status"] == 400 and "is not served here" in r.json()["message"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_rebound_name_cannot_read_a_prediction(client, digits_test):  # noqa: F811
    r = predict(client, digits_test, host="attacker.example:8000", origin="http://attacker.example:8000")
    assert r.status_code == 400 and "prediction" not in r.text


# ---------------------------------------------------------------------------- cross-site requests
@pytest.mark.parametrize("headers", [{"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
                                     {"origin": "http://evil.example"}, {"origin": "null"},
                                     {"origin": "http://127.0.0.1:9999"},  # another port is another origin
                                     {"origin": "https://127.0.0.1"},
                                     {"origin": "http://localhost", "sec-fetch-site": "cross-site"}])
def test_a_cross_site_post_is_refused(client, digits_test, headers):  # noqa: F811
    r = predict(client, digits_test, **headers)
    assert r.status_code == 403 and r.json()["status"] == 403
    assert "refused" in r.json()["message"] and "prediction" not in r.text


@pytest.mark.parametrize("headers", [{}, {"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1"},
                                     {"origin": "http://127.0.0.1"}, {"sec-fetch-site": "none"}])
def test_the_page_itself_and_scripts_may_post(client, digits_test, headers):  # noqa: F811
    r = predict(client, digits_test, **headers)
    assert r.status_code == 200 and "prediction" in r.json()


def test_reading_is_not_a_change(client):
    r = client.get("/api/models", headers={"sec-fetch-site": "cross-site", "origin": "http://evil.example"})
    assert r.status_code == 200  # a browser still keeps the answer from the other site (no CORS header)
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_changing_method_is_checked(method):
    assert cross_site(method, {"host": "127.0.0.1:8000", "origin": "http://evil.example"})
    assert cross_site(method, {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}) is None
    assert cross_site("GET", {"host": "127.0.0.1:8000", "origin": "http://evil.example"}) is None


# ---------------------------------------------------------------------------- headers
@pytest.mark.parametrize("path", ["/", "/api/models", "/static/app.js", "/docs", "/openapi.json",
                                  "/api/models/nope", "/api/models/logreg/test-images/0"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_the_pages_policy_allows_no_inline_code(client):
    r = client.get("/")
    assert r.status_code == 200 and "<script" in r.text
    csp = r.headers["content-security-policy"]
    assert "sha256-" not in csp  # the page has no inline script or style: none is allowed
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text)


def test_the_docs_inline_script_is_allowed_by_its_hash(client):
    r = client.get("/docs")
    scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", r.text, re.S)
    assert scripts  # Swagger UI starts from one inline script
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in r.headers["content-security-policy"]


def test_a_hash_allows_exactly_the_inline_code_it_was_made_from():
    csp = content_security_policy(b"<p>hi</p><script>alert(1)</script><script src='/x.js'></script>").decode()
    assert csp.count("sha256-") == 1
    assert base64.b64encode(hashlib.sha256(b"alert(1)").digest()).decode() in csp

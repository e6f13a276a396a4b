"""Who may talk to the server, and what its answers let a browser do.

:class:`Guard`, an ASGI middleware around the whole app, checks every request before the app
sees it and stamps every answer:

- **Host.** The ``Host`` header must name this server: ``localhost``, ``127.0.0.1``, ``::1``
  or a name given to :func:`seethrough.web.create_app` (``serve`` passes its ``--host`` and any
  ``--allow-host``). A web page on another site whose name an attacker points at 127.0.0.1
  (DNS rebinding) sends its own name, and gets 400.
- **Cross-site requests.** A request that changes anything (any method but GET, HEAD and
  OPTIONS) coming from another site gets 403: the browser says so in ``Sec-Fetch-Site``
  (``cross-site``, ``same-site``), and an ``Origin`` that is not this server's own (or is
  ``null``) is refused too. Requests without either header (curl, scripts) are served.
- **Answers** carry ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and a Content-Security-Policy that allows scripts, styles,
  requests and frames from this server only; an HTML answer's own inline ``<script>`` and
  ``<style>`` blocks (the Swagger UI at /docs starts with one) are allowed by their SHA-256
  hash, so no other inline code can run.

Refusals are JSON, ``{"status": code, "message": "..."}``, like every other error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import urlsplit

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSP = ("default-src 'none'; script-src 'self'{scripts}; style-src 'self'{styles}; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer")]
_INLINE = {tag: re.compile(rf"<{tag}(?![^>]*\bsrc=)[^>]*>(.*?)</{tag}>", re.S | re.I) for tag in ("script", "style")}


def host_name(host: str) -> str:
    """``Host`` header -> the name alone: ``"[::1]:8000"`` -> ``"::1"``, ``"LocalHost."`` -> ``"localhost"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":")[0]
    return host.rstrip(".")


def cross_site(method: str, headers: dict[str, str], scheme: str = "http") -> str | None:
    """Why a request must be refused as cross-site, or None. ``headers``: lower-case names;
    ``scheme``: the request's own (an origin is scheme, host and port)."""
    if method in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site", "")
    if site in ("cross-site", "same-site"):
        return f"a {site} {method} request"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin.lower())
        if (parts.scheme, parts.netloc) != (scheme, headers.get("host", "").lower()):
            return f"a {method} request from origin {origin!r}"
    return None


def content_security_policy(html: bytes = b"") -> bytes:
    """The policy for an answer; an HTML page's own inline scripts and styles are allowed by hash."""
    text = html.decode("utf-8", "replace")
    found = {tag: "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
                          for m in rx.findall(text)) for tag, rx in _INLINE.items()}
    return CSP.format(scripts=found["script"], styles=found["style"]).encode()


class Guard:
    """ASGI middleware: refuse foreign hosts and cross-site changes, add the security headers."""

    def __init__(self, app, hosts=()):
        self.app = app
        self.hosts = {host_name(h) for h in (*LOCAL_HOSTS, *hosts) if h}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan; the app has no websockets
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return await refuse(send, 400, f"host {host or '(none)'!r} is not served here; use "
                                            f"http://127.0.0.1 or a name given to serve --allow-host")
        why = cross_site(scope.get("method", "GET"), headers, scope.get("scheme", "http"))
        if why:
            return await refuse(send, 403, f"{why} is refused: this server only takes changes from its own page")
        await self.app(scope, receive, _stamping(send))


def _stamping(send):
    """Wrap ``send`` so that every answer carries the headers; HTML is held until its body is whole."""
    held: dict = {}

    async def stamped(message):
        if message["type"] == "http.response.start":
            ctype = dict(message.get("headers", [])).get(b"content-type", b"")
            if ctype.startswith(b"text/html"):
                held.update(start=message, body=[])
                return
            message = {**message, "headers": _with_headers(message, content_security_policy())}
        elif message["type"] == "http.response.body" and held:
            held["body"].append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(held["body"])
            await send({**held["start"], "headers": _with_headers(held["start"], content_security_policy(body))})
            message = {**message, "body": body}
        await send(message)

    return stamped


def _with_headers(start: dict, csp: bytes) -> list:
    return [*start.get("headers", []), *HEADERS, (b"content-security-policy", csp)]


async def refuse(send, status: int, message: str, *, close: bool = False):
    """Answer a raw ASGI request with ``{"status", "message"}`` (``close``: and end the connection)."""
    body = json.dumps({"status": status, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS, (b"content-security-policy", content_security_policy()),
                            *([(b"connection", b"close")] if close else [])]})
    await send({"type": "http.response.body", "body": body})

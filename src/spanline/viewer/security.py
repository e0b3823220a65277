"""The viewer's guard: a pure ASGI middleware in front of every route.

* **Headers** on every response: a strict Content-Security-Policy (only the
  package's own scripts and styles, no inline script, no framing), ``nosniff``,
  ``no-referrer``.
* **Host check** (DNS rebinding): a page on some web site can resolve its own name to
  127.0.0.1 and read a local server.  Requests whose ``Host`` is not one of the
  names the server is reachable by are refused with 421.
* **Token**: when the viewer is bound to a non-loopback address, every request must
  carry the token -- ``Authorization: Bearer <token>`` (what OTLP exporters send via
  ``OTEL_EXPORTER_OTLP_HEADERS``), the ``spanline_token`` cookie, or ``?token=`` once
  in a browser, which sets the cookie and redirects to the same URL without it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["CSP", "LOOPBACK_NAMES", "Guard"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
COOKIE = "spanline_token"

_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

ASGIApp = Any


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:4318
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """Wraps an ASGI app; ``token`` ``None`` means no token is asked for, and
    ``hosts`` are the accepted ``Host`` names (``None`` accepts any, for a server
    bound to a public address, where the token is the protection)."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Iterable[str] | None) -> None:
        self.app = app
        self.token = token
        self.hosts = None if hosts is None else frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None and _host_name(headers.get("host", "")) not in self.hosts:
            await _plain(send, 421, "this server answers only to its own address")
            return
        if self.token is not None:
            query = scope.get("query_string", b"").decode("latin-1")
            given = dict(parse_qsl(query)).get("token")
            if given is not None and _same(given, self.token):
                await _set_cookie_and_redirect(send, scope, query, self.token)
                return
            if not _authorized(headers, self.token):
                await _plain(send, 401, "a token is required: ?token=..., or Authorization: Bearer")
                return

        async def secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, secured)


def _same(given: str, token: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (``compare_digest``
    raises ``TypeError`` on non-ASCII ``str``)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


def _authorized(headers: dict[str, str], token: str) -> bool:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and _same(auth[7:].strip(), token):
        return True
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
        return False
    morsel = cookie.get(COOKIE)
    return morsel is not None and _same(morsel.value, token)


async def _plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _set_cookie_and_redirect(
    send: Any, scope: dict[str, Any], query: str, token: str
) -> None:
    rest = urlencode([(k, v) for k, v in parse_qsl(query) if k != "token"])
    location = scope.get("path", "/") + (f"?{rest}" if rest else "")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", cookie.encode()),
                (b"content-length", b"0"),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})

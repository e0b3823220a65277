"""``spanline serve``: the viewer and the OTLP/HTTP receiver on one port.

Bound to a loopback address (the default, 127.0.0.1) it needs no token, and answers
only to ``Host`` names of this machine (DNS-rebinding protection).  Bound to any
other address it requires a token on every request: the one given, or a new random
one printed at start-up.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
from typing import Any

from spanline.viewer.app import create_app
from spanline.viewer.ingest import DEFAULT_MAX_BODY
from spanline.viewer.security import LOOPBACK_NAMES, Guard
from spanline.viewer.store_source import StoreSource

__all__ = ["build", "is_loopback", "run"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build(
    store: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 4318,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> tuple[Any, StoreSource, str | None]:
    """The guarded ASGI app, its store source and the token in force (``None`` when
    none is asked for)."""
    if max_body <= 0:
        raise ValueError(f"max_body={max_body!r} must be a positive number of bytes")
    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    source = StoreSource(store)
    shown = host if ":" not in host else f"[{host.strip('[]')}]"
    app = create_app(source, max_body=max_body, otlp_url=f"http://{shown}:{port}/v1/traces")
    hosts = {*LOOPBACK_NAMES, host.lower(), shown.lower()} if loopback else None
    return Guard(app, token=token or None, hosts=hosts), source, token or None


def run(
    store: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 4318,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> None:
    """Serve until interrupted (Ctrl-C), then flush ingested spans and close."""
    import uvicorn

    app, source, token = build(store, host=host, port=port, token=token, max_body=max_body)
    shown = host if ":" not in host else f"[{host.strip('[]')}]"
    url = f"http://{shown}:{port}/"
    print(f"spanline viewer on {url}  (store: {source.label})", file=sys.stderr)
    print(f"OTLP/HTTP receiver: {url}v1/traces", file=sys.stderr)
    if token:
        print(f"token required: open {url}?token={token}", file=sys.stderr)
        print(
            f"  exporters: OTEL_EXPORTER_OTLP_HEADERS='Authorization=Bearer {token}'",
            file=sys.stderr,
        )
    try:
        uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning")
    finally:
        source.close()

"""A real OTLP/HTTP receiver on 127.0.0.1 for tests.

It is our own small server (not a mock): it listens on a real socket, decodes bodies
with ``opentelemetry-proto`` and can be told to answer with given statuses first
(503 with Retry-After, 429, 400 …) to exercise the exporter's retry rules.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _answer(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes
) -> None:
    """Send one complete response."""
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: bytes
    status: int = 200

    def request(self) -> ExportTraceServiceRequest:
        return ExportTraceServiceRequest.FromString(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    plan: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = (
                    gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                )
                with receiver.lock:
                    status, headers, payload = (
                        receiver.plan.pop(0) if receiver.plan else (200, {}, b"")
                    )
                    receiver.received.append(
                        Received(self.path, dict(self.headers), raw, body, status)
                    )
                _answer(self, status, headers, payload)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def spans(self) -> list[Any]:
        """Spans in the requests this receiver accepted (2xx)."""
        with self.lock:
            bodies = [r.request() for r in self.received if 200 <= r.status < 300]
        return [
            s for b in bodies for rs in b.resource_spans for ss in rs.scope_spans for s in ss.spans
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ForwardingProxy(Receiver):
    """Answers the statuses in ``plan`` first, then forwards each body unchanged to
    ``upstream`` and relays its answer (a real hop on 127.0.0.1, for retry tests)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(0)
        self.upstream = upstream

    def start(self) -> ForwardingProxy:
        import http.client
        import urllib.parse

        proxy = self
        target = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy.lock:
                    planned = proxy.plan.pop(0) if proxy.plan else None
                    proxy.received.append(
                        Received(
                            self.path, dict(self.headers), raw, b"", planned[0] if planned else 200
                        )
                    )
                if planned is None:
                    conn = http.client.HTTPConnection(
                        target.hostname or "127.0.0.1", target.port, timeout=30
                    )
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() in ("content-type", "content-encoding")
                    }
                    conn.request("POST", target.path, body=raw, headers=headers)
                    answer = conn.getresponse()
                    planned = (answer.status, {}, answer.read())
                    conn.close()
                _answer(self, *planned)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

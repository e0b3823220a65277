"""The OTLP/HTTP trace receiver's request handling, independent of the web framework.

``POST /v1/traces`` bodies are decoded here: binary protobuf
(``application/x-protobuf``) or JSON (``application/json``, with the OTLP/HTTP JSON
rules: trace and span ids as hex, enums as numbers, unknown fields ignored),
optionally gzip-compressed.  Limits apply *before* and *while* decompressing, so a
small gzip bomb is refused as politely as a large body.

Every outcome is an :class:`IngestResult`: the HTTP status, the response body in the
request's own encoding, and -- for the caller's stats -- how many spans were accepted.
Errors are ``google.rpc.Status`` messages naming what was wrong, as the OTLP/HTTP
specification asks; nothing here raises on bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["DEFAULT_MAX_BODY", "IngestResult", "Sink", "handle_export", "refuse_oversized"]

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Largest accepted body in bytes, after decompression (``--max-body`` changes it)."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Sink = Callable[[ExportTraceServiceRequest], tuple[int, str]]
"""Stores the spans of one request; returns ``(rejected span count, message)``."""

_INVALID_ARGUMENT = 3  # google.rpc.Code
_RESOURCE_EXHAUSTED = 8
_INTERNAL = 13


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What to answer: ``status`` code, ``body`` bytes of ``content_type``, and how
    many spans were ``accepted`` and ``rejected``."""

    status: int
    content_type: str
    body: bytes
    accepted: int = 0
    rejected: int = 0


class _RefusedError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _media_type(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in (PROTOBUF, JSON):
        return media
    raise _RefusedError(
        415,
        _INVALID_ARGUMENT,
        f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}",
    )


def _inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name != "gzip":
        raise _RefusedError(
            415, _INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}: use gzip or none"
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise _RefusedError(400, _INVALID_ARGUMENT, f"body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise _too_large(limit, "after decompression")
    if not inflater.eof:
        raise _RefusedError(400, _INVALID_ARGUMENT, "gzip body is truncated")
    return data


def _too_large(limit: int, when: str = "") -> _RefusedError:
    suffix = f" {when}" if when else ""
    return _RefusedError(413, _RESOURCE_EXHAUSTED, f"body is larger than {limit} bytes{suffix}")


_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_ids_to_base64(node: Any, where: str) -> None:
    """OTLP/HTTP JSON writes ids as hex; protobuf's JSON parser expects base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise _RefusedError(
                        400, _INVALID_ARGUMENT, f"{where}.{key} is not hex: {value[:64]!r}"
                    ) from None
            else:
                _hex_ids_to_base64(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{where}[{index}]")


def _decode(data: bytes, media: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(data)
        except (DecodeError, RecursionError) as error:
            message = f"body is not a valid OTLP protobuf: {error}"
            raise _RefusedError(400, _INVALID_ARGUMENT, message) from None
        return request
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise _RefusedError(400, _INVALID_ARGUMENT, f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise _RefusedError(400, _INVALID_ARGUMENT, "body must be a JSON object")
    try:
        _hex_ids_to_base64(document, "$")
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, RecursionError) as error:
        message = f"body is not a valid OTLP JSON request: {error}"
        raise _RefusedError(400, _INVALID_ARGUMENT, message) from None
    return request


def _span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


def _answer(media: str, message: Any) -> bytes:
    if media == JSON:
        return json.dumps(json_format.MessageToDict(message)).encode()
    return bytes(message.SerializeToString())


def _error(media: str, refused: _RefusedError) -> IngestResult:
    status = status_pb2.Status(code=refused.code, message=str(refused))
    return IngestResult(refused.status, media, _answer(media, status))


def _media_or_default(content_type: str | None) -> str:
    return JSON if (content_type or "").lower().startswith(JSON) else PROTOBUF


def refuse_oversized(content_type: str | None, max_body: int) -> IngestResult:
    """The 413 answer for a body the server refused to read in full."""
    return _error(_media_or_default(content_type), _too_large(max_body))


def handle_export(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    sink: Sink,
    *,
    max_body: int = DEFAULT_MAX_BODY,
) -> IngestResult:
    """Decode one ``POST /v1/traces`` body and hand its spans to ``sink``.

    Answers 200 (with ``partial_success`` when the sink rejected some spans), 400 for
    a body that cannot be decoded, 413 above ``max_body``, 415 for an unsupported
    content type or encoding, and 503 when the sink failed (OTLP clients retry on it).
    """
    media = _media_or_default(content_type)
    try:
        media = _media_type(content_type)
        if len(body) > max_body:
            raise _too_large(max_body)
        request = _decode(_inflate(body, content_encoding, max_body), media)
    except _RefusedError as refused:
        return _error(media, refused)
    total = _span_count(request)
    try:
        rejected, message = sink(request)
    except Exception as error:  # noqa: BLE001 - the store's failure is the client's 503
        return _error(media, _RefusedError(503, _INTERNAL, f"could not store the spans: {error}"))
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return IngestResult(200, media, _answer(media, response), total - rejected, rejected)

"""Carrying a trace into background jobs: :func:`dump` and :func:`restore`.

``dump()`` returns a small JSON-safe dict to put in a job payload::

    {"v": 1, "trace_id": "tr_…", "traceparent": "00-<32 hex>-<16 hex>-03",
     "actor": {"type": "user", "id": "42"}, "frames": [{"type": "operation", …}]}

``restore(data)`` continues that trace wherever the job runs: same trace id, same
actor, the enqueuing frames as parents.  A payload that is malformed or tampered with
never stops the job: it runs in a fresh trace and a warning names what was wrong.
With ``configure(payload_secret=...)`` payloads are signed (HMAC-SHA256) and an
unsigned or altered one is rejected the same way.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any

from spanline._log import report
from spanline.core import clock, config, ids
from spanline.core.actor import normalize_actor
from spanline.core.context import Boundary, Node, RemoteFrame, TraceRoot, current
from spanline.core.payload import read_mapping, signature
from spanline.core.pipeline import PIPELINE
from spanline.core.span import Span, new_trace

__all__ = ["InvalidPayloadError", "dump", "restore"]

VERSION = 1
MAX_FRAMES = 64
MAX_NAME = 256
MAX_PAYLOAD_BYTES = 64 * 1024
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")  # fullmatch
_FRAME_TYPES = {"operation": "op_", "handler": "hd_"}
_KEYS = {"v", "trace_id", "traceparent", "actor", "frames", "sig"}


class InvalidPayloadError(ValueError):
    """A job payload's trace context could not be trusted (the message says why)."""


def _signature(payload: Mapping[str, Any], secret: str) -> str:
    return signature(payload, secret)


def dump() -> dict[str, Any] | None:
    """The current trace as a JSON-safe dict for a job payload (``None`` outside a trace)."""
    node = current.get()
    if node is None:
        return None
    trace = node._trace
    chain: list[Node] = []
    walker: Node | None = node
    while walker is not None:
        chain.append(walker)
        walker = walker._parent
    chain.reverse()
    frames = [
        {**f, "name": f["name"][:MAX_NAME]} for f in (n.frame() for n in chain) if f is not None
    ][-MAX_FRAMES:]
    payload: dict[str, Any] = {
        "v": VERSION,
        "trace_id": trace.text,
        "actor": dict(trace.actor) if trace.actor else None,
        "frames": frames,
    }
    parent_sid = node.span_id if isinstance(node, Span) else getattr(node, "sid", 0)
    if parent_sid:
        flags = (1 if trace.recorded else 0) | (2 if trace.external is None else 0)
        payload["traceparent"] = f"00-{trace.hex}-{parent_sid:016x}-{flags:02x}"
    secret = config.settings.payload_secret
    if secret:
        payload["sig"] = _signature(payload, secret)
    return payload


def _text(value: object, what: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidPayloadError(f"{what} must be a non-empty string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidPayloadError(f"{what} is longer than {limit} characters")
    return value


def _parse(data: object) -> dict[str, Any]:
    data = read_mapping(data, what="payload", limit=MAX_PAYLOAD_BYTES, error=InvalidPayloadError)
    unknown = set(data) - _KEYS
    if unknown:
        raise InvalidPayloadError(f"unknown keys {sorted(map(str, unknown))}")
    if data.get("v") != VERSION:
        raise InvalidPayloadError(f"unsupported version {data.get('v')!r} (expected {VERSION})")
    return dict(data)


def _build(data: dict[str, Any]) -> TraceRoot | RemoteFrame:
    secret = config.settings.payload_secret
    if secret:
        sig = data.get("sig")
        try:
            expected = _signature(data, secret)
        except (TypeError, ValueError, RecursionError):
            raise InvalidPayloadError("payload holds values that cannot be signed") from None
        if not isinstance(sig, str) or not hmac.compare_digest(sig, expected):
            raise InvalidPayloadError("signature is missing or does not match (payload_secret)")
    trace_text = _text(data.get("trace_id"), "trace_id")
    trace_int = ids.trace_int_from_id(trace_text)
    try:
        actor = normalize_actor(data.get("actor"))
    except (TypeError, ValueError) as error:
        raise InvalidPayloadError(f"actor: {error}") from None
    parent_sid = 0
    parent_sampled: bool | None = None
    traceparent = data.get("traceparent")
    if traceparent is not None:
        match = _TRACEPARENT.fullmatch(traceparent) if isinstance(traceparent, str) else None
        if match is None:
            raise InvalidPayloadError(f"traceparent {traceparent!r} is malformed")
        if int(match.group(1), 16) != trace_int:
            raise InvalidPayloadError("traceparent's trace id does not match trace_id")
        parent_sid = int(match.group(2), 16)
        if parent_sid == 0:
            raise InvalidPayloadError("traceparent's parent id is all zeros")
        parent_sampled = bool(int(match.group(3), 16) & 1)
    frames = data.get("frames", [])
    if not isinstance(frames, list) or len(frames) > MAX_FRAMES:
        raise InvalidPayloadError(f"frames must be a list of at most {MAX_FRAMES} frames")
    external = None if ids.trace_id_from_int(trace_int) == trace_text else trace_text
    trace = new_trace(clock.now_ns(), trace_int, external, actor, parent_sampled)
    node = _frame_chain(TraceRoot(trace), frames)
    if parent_sid and getattr(node, "sid", 0) != parent_sid:
        # the job was enqueued from a plain span inside the last frame
        node = RemoteFrame(trace, node, "span", f"{parent_sid:016x}", "", parent_sid)
    return node


def _frame_chain(root: TraceRoot, frames: list[Any]) -> TraceRoot | RemoteFrame:
    node: TraceRoot | RemoteFrame = root
    for i, frame in enumerate(frames):
        if not isinstance(frame, Mapping):
            raise InvalidPayloadError(f"frames[{i}] is not a mapping")
        kind = frame.get("type")
        if not isinstance(kind, str) or kind not in _FRAME_TYPES:
            raise InvalidPayloadError(f"frames[{i}].type must be 'operation' or 'handler'")
        ident = frame.get("id")
        if not ids.is_valid_id(ident, _FRAME_TYPES[kind]):
            raise InvalidPayloadError(f"frames[{i}].id {ident!r} is not a valid {kind} id")
        assert isinstance(ident, str)  # noqa: S101 - narrowed by is_valid_id
        name = _text(frame.get("name"), f"frames[{i}].name")
        node = RemoteFrame(root._trace, node, kind, ident, name, ids.decode_span_id(ident))
    return node


class restore(Boundary):  # noqa: N801 - used like a function: ``with spanline.restore(data):``
    """Continue the trace a job payload carries (see :func:`dump`).

    Yields the trace id.  ``None`` starts a fresh trace; a malformed or tampered
    payload starts a fresh trace too, logs a warning naming the problem and counts
    ``restore_rejected`` in ``spanline.tracer.stats()`` -- the job always runs.
    """

    __slots__ = ()

    def __init__(self, data: object) -> None:
        node: TraceRoot | RemoteFrame
        if data is None:
            node = TraceRoot(new_trace(clock.now_ns()))
        else:
            try:
                node = _build(_parse(data))
            except Exception as error:  # noqa: BLE001 - the job must run whatever it carries
                if not isinstance(error, InvalidPayloadError):
                    error = InvalidPayloadError(f"unreadable payload ({type(error).__name__})")
                PIPELINE.count("restore_rejected")
                report(
                    "restore",
                    "spanline.restore: ignoring the job's trace "
                    "context, starting a fresh trace: %s",
                    error,
                    level=logging.WARNING,
                )
                node = TraceRoot(new_trace(clock.now_ns()))
        self._node = node

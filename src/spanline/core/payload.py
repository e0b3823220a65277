"""What job payloads have in common: JSON text or a mapping, read within a size limit,
and signed with HMAC-SHA256 over their canonical JSON.  Used by trace payloads
(:mod:`spanline.core.carrier`) and operation jobs (:mod:`spanline.jobs`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["read_mapping", "signature"]


def read_mapping(
    data: object, *, what: str, limit: int, error: type[ValueError]
) -> Mapping[str, Any]:
    """``data`` as a mapping: JSON text/bytes of at most ``limit`` bytes are decoded;
    anything else that is not a mapping raises ``error`` naming ``what``."""
    if isinstance(data, bytes | bytearray | str):
        if len(data) > limit:
            raise error(f"{what} is larger than {limit} bytes")
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as problem:
            raise error(f"{what} is not valid JSON ({problem})") from None
    if not isinstance(data, Mapping):
        raise error(f"{what} must be a mapping, got {type(data).__name__}")
    return data


def signature(payload: Mapping[str, Any], secret: str, domain: bytes = b"") -> str:
    """HMAC-SHA256 (hex) of ``payload`` without its ``sig`` key, as canonical JSON;
    ``domain`` prefixes the message so one kind of payload never validates another."""
    body = json.dumps(
        {k: v for k, v in payload.items() if k != "sig"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hmac.new(secret.encode(), domain + body.encode(), hashlib.sha256).hexdigest()

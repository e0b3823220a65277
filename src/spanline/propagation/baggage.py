"""W3C Baggage: ``baggage`` headers as a mapping of names to values.

* members are ``key=value`` (optional ``;property`` parts are dropped), separated by
  commas, across any number of ``baggage`` headers;
* keys are RFC 7230 tokens; values are percent-encoded UTF-8 (decoded here);
* an invalid member is skipped, the others are kept; at most 64 members and 8192
  bytes are read or written (the minimum the specification asks receivers to take).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

__all__ = ["MAX_BYTES", "MAX_MEMBERS", "format_baggage", "parse_baggage"]

MAX_MEMBERS = 64
MAX_BYTES = 8192
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def parse_baggage(values: list[str]) -> dict[str, str]:
    """The baggage in the received ``baggage`` header values (later keys win)."""
    result: dict[str, str] = {}
    size = 0
    for header in values:
        size += len(header)
        if size > MAX_BYTES:
            break
        for raw in header.split(","):
            item = raw.split(";", 1)[0].strip(" \t")
            key, sep, value = item.partition("=")
            key, value = key.strip(" \t"), value.strip(" \t")
            if not sep or not _TOKEN.fullmatch(key) or not _VALUE.fullmatch(value):
                continue
            try:
                result[key] = urllib.parse.unquote(value, errors="strict")
            except UnicodeDecodeError:
                continue
            if len(result) >= MAX_MEMBERS:
                return result
    return result


def format_baggage(entries: Mapping[str, str]) -> str:
    """A ``baggage`` header value (invalid keys skipped, limits respected)."""
    members: list[str] = []
    size = 0
    for key, value in entries.items():
        if not _TOKEN.fullmatch(key):
            continue
        member = f"{key}={urllib.parse.quote(str(value), safe='')}"
        if len(members) >= MAX_MEMBERS or size + len(member) + 1 > MAX_BYTES:
            break
        members.append(member)
        size += len(member) + 1
    return ",".join(members)

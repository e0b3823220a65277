"""The cardinality guard: warn when span names or message attributes carry ids.

Trace backends index span names and attribute keys; a name with an id in it
(``GET /orders/12345``) makes one entry per order, and the index bloats.  The guard
looks for what reads like an id:

* a UUID, an email address, a spanline id (``tr_…``, ``op_…``, ``hd_…``, ``ev_…``,
  ``sp_…``), a token of 16 or more hex characters, a run of 4 or more digits;

in span names (and suggests the pattern: ``GET /orders/{id}``), and in the attribute
keys of messaging spans (kind PRODUCER/CONSUMER, or with ``messaging.system``), where
a key also counts when it names an id (``user.id``, ``request_id``): the Nexus
tracing guide asks for low-cardinality attributes only, with ids in baggage or log
events.  The OpenTelemetry ``messaging.*`` names (``messaging.message.id`` is
conventional) and spanline's own ``spanline.*`` names are left alone.

**Threading.**  The guard is never called on the application thread: the batch
processor calls :meth:`CardinalityGuard.check_batch` from its worker thread, once per
batch before export.  Each pattern is reported once (through :func:`spanline._log.report`,
level WARNING); at most :data:`MAX_KEYS` patterns are remembered, after which new
patterns are counted but no longer named.  ``configure(cardinality_warnings=False)``
or ``SPANLINE_CARDINALITY_WARNINGS=false`` turns the guard off.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from spanline._log import report
from spanline.core import config
from spanline.core.ids import PREFIXES
from spanline.core.span import Span, SpanKind

__all__ = ["MAX_KEYS", "CardinalityGuard", "id_key", "name_pattern"]

MAX_KEYS = 1000
"""How many reported patterns a guard remembers (its memory is bounded)."""

_PREFIXES = "|".join(p.rstrip("_") for p in PREFIXES)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
            r"-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
        ),
        "{uuid}",
    ),
    (
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        "{email}",
    ),
    (re.compile(rf"(?<![0-9A-Za-z])(?:{_PREFIXES})_[0-9A-Za-z]{{6,}}"), "{id}"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])"), "{id}"),
    (re.compile(r"[0-9]{4,}"), "{id}"),
)
# one cheap search first: most names hold nothing of the kind
_ANY = re.compile("|".join(f"(?:{p.pattern})" for p, _ in _PATTERNS))
_ID_WORD = re.compile(r"(?:^|[._\-])(?:id|ids|uuid|guid)$|[a-z](?:Id|Ids|ID|Uuid|UUID)$")
_EXEMPT_PREFIXES = ("messaging.", "spanline.")
_MESSAGING_KINDS = (SpanKind.PRODUCER, SpanKind.CONSUMER)


_NAME_CACHE_MAX = 4096
_name_cache: dict[str, str | None] = {}
"""Recent answers of :func:`name_pattern`: span names repeat, and the guard checks
every exported span (emptied when full, so it stays bounded under id-laden names)."""


def name_pattern(name: str) -> str | None:
    """``name`` with every id-looking part replaced by a placeholder
    (``GET /orders/12345`` -> ``GET /orders/{id}``), or ``None`` when it has none."""
    try:
        return _name_cache[name]
    except KeyError:
        pass
    found: str | None = None
    if _ANY.search(name) is not None:
        found = name
        for pattern, placeholder in _PATTERNS:
            found = pattern.sub(placeholder, found)
    if len(_name_cache) >= _NAME_CACHE_MAX:
        _name_cache.clear()
    _name_cache[name] = found
    return found


def id_key(key: str) -> str | None:
    """The pattern of attribute key ``key`` when it looks like an id or names one
    (``order.12345.status`` -> ``order.{id}.status``; ``user.id`` as is), else
    ``None``.  ``messaging.*`` and ``spanline.*`` keys are never flagged."""
    if key.startswith(_EXEMPT_PREFIXES):
        return None
    pattern = name_pattern(key)
    if pattern is not None:
        return pattern
    return key if _ID_WORD.search(key) else None


class CardinalityGuard:
    """Reports high-cardinality span names and messaging attribute keys, once each.

    One guard per batch processor, called only from its worker thread (a lock keeps
    it correct if shared anyway).
    """

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        """Remember at most ``max_keys`` reported patterns."""
        self._max_keys = max_keys
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def check(self, span: Span) -> tuple[bool, bool]:
        """Whether ``span``'s name, and whether its attribute keys (messaging spans
        only), look high-cardinality; the first sighting of each pattern is reported.
        ``(False, False)`` when ``cardinality_warnings`` is off.  Never raises."""
        names, keys = self.check_batch((span,))
        return bool(names), bool(keys)

    def check_batch(self, spans: Iterable[Span]) -> tuple[int, int]:
        """:meth:`check` for many spans: how many have a high-cardinality name, and
        how many (messaging spans) high-cardinality attribute keys.  A name is
        looked at once per call (a batch repeats few names).  Never raises."""
        if not config.settings.cardinality_warnings:
            return 0, 0
        names = keys = 0
        verdicts: dict[str, bool] = {}
        for span in spans:
            try:
                name = span.name
                flagged = verdicts.get(name)
                if flagged is None:
                    flagged = verdicts[name] = self._name_flagged(name)
                names += flagged
                attributes = span._attributes
                if attributes and (
                    span.kind in _MESSAGING_KINDS or "messaging.system" in attributes
                ):
                    keys += self._keys_flagged(name, attributes)
            except Exception as error:  # noqa: BLE001 - tracing never breaks the app
                report(
                    "cardinality-failed",
                    "spanline: cardinality check failed: %r",
                    error,
                    exc_info=error,
                )
        return names, keys

    def _name_flagged(self, name: str) -> bool:
        pattern = name_pattern(name)
        if pattern is None:
            return False
        if self._first(f"name:{pattern}"):
            report(
                f"cardinality:name:{pattern}",
                "spanline: span name %r looks like it contains an id (high cardinality: one "
                "name per value bloats trace backends); name it %r and put the id in an "
                "attribute or a log event (SPANLINE_CARDINALITY_WARNINGS=false silences this)",
                name,
                pattern,
                level=logging.WARNING,
            )
        return True

    def _keys_flagged(self, name: str, attributes: dict[str, Any]) -> bool:
        flagged = False
        for key in list(attributes):
            key_pattern = id_key(key) if isinstance(key, str) else None
            if key_pattern is None:
                continue
            flagged = True
            if self._first(f"attribute:{key_pattern}"):
                report(
                    f"cardinality:attribute:{key_pattern}",
                    "spanline: messaging span %r carries attribute %r, which looks like "
                    "an id (high cardinality); keep message span attributes "
                    "low-cardinality and put ids in baggage or a log event "
                    "(SPANLINE_CARDINALITY_WARNINGS=false silences this)",
                    name,
                    key,
                    level=logging.WARNING,
                )
        return flagged

    def _first(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= self._max_keys:
                full = True
            else:
                self._seen.add(key)
                full = False
        if full:
            report(
                f"cardinality-full:{id(self)}",
                "spanline: over %d distinct high-cardinality patterns seen; new ones are "
                "counted in the processor's stats() but no longer named",
                self._max_keys,
                level=logging.WARNING,
            )
            return False
        return True

    def clear(self) -> None:
        """Forget the reported patterns (each is reported again on its next sighting)."""
        with self._lock:
            self._seen.clear()

"""Redis (``redis-py``, sync and asyncio): a CLIENT span per command -- keys only.

``spanline.instrument("redis")`` wraps ``Redis.execute_command`` of
``redis.client.Redis`` and ``redis.asyncio.client.Redis``.  Each command is a span
named ``redis.<command>`` with ``db.system.name=redis``, ``db.operation.name``,
``db.namespace`` (the database number), ``server.address``/``server.port`` and
``db.query.text`` holding the command and its **keys only**: values never enter a
span (``SET k v`` is recorded as ``SET k``), and commands whose key positions are not
known here -- ``AUTH`` among them -- are recorded by name alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from spanline.core.span import Span, SpanKind

__all__ = ["TARGETS", "query_text"]

_ALL_KEYS = frozenset(
    {
        "DEL",
        "UNLINK",
        "EXISTS",
        "MGET",
        "TOUCH",
        "WATCH",
        "SINTER",
        "SUNION",
        "SDIFF",
        "PFCOUNT",
    }
)
_FIRST_KEY = frozenset(
    {
        "GET",
        "SET",
        "SETEX",
        "PSETEX",
        "SETNX",
        "GETSET",
        "GETDEL",
        "GETEX",
        "INCR",
        "INCRBY",
        "INCRBYFLOAT",
        "DECR",
        "DECRBY",
        "APPEND",
        "STRLEN",
        "EXPIRE",
        "PEXPIRE",
        "EXPIREAT",
        "PEXPIREAT",
        "TTL",
        "PTTL",
        "PERSIST",
        "TYPE",
        "HGET",
        "HSET",
        "HSETNX",
        "HMSET",
        "HMGET",
        "HGETALL",
        "HDEL",
        "HEXISTS",
        "HINCRBY",
        "HINCRBYFLOAT",
        "HKEYS",
        "HVALS",
        "HLEN",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LREM",
        "LSET",
        "LTRIM",
        "SADD",
        "SREM",
        "SMEMBERS",
        "SISMEMBER",
        "SCARD",
        "SPOP",
        "SRANDMEMBER",
        "ZADD",
        "ZREM",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGE",
        "ZSCORE",
        "ZCARD",
        "ZINCRBY",
        "ZRANK",
        "XADD",
        "XRANGE",
        "XLEN",
        "PFADD",
        "GETRANGE",
        "SETRANGE",
        "BITCOUNT",
        "GETBIT",
        "SETBIT",
    }
)
_PAIRS = frozenset({"MSET", "MSETNX"})  # key value key value …
_TWO_KEYS = frozenset({"RENAME", "RENAMENX", "SMOVE", "LMOVE", "RPOPLPUSH", "COPY"})


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def query_text(args: Sequence[Any]) -> tuple[str, str]:
    """``(operation, db.query.text)`` for a command: the command and its keys only."""
    if not args:
        return "", ""
    command = _text(args[0]).upper()
    rest = args[1:]
    if command in _ALL_KEYS:
        keys = list(rest)
    elif command in _FIRST_KEY:
        keys = list(rest[:1])
    elif command in _PAIRS:
        keys = list(rest[::2])
    elif command in _TWO_KEYS:
        keys = list(rest[:2])
    else:
        keys = []
    return command, " ".join([command, *(_text(k) for k in keys)])


def _span_for(client: Any, args: Sequence[Any]) -> Span:
    operation, text = query_text(args)
    attributes: dict[str, Any] = {
        "db.system.name": "redis",
        "db.operation.name": operation,
        "db.query.text": text,
    }
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    if kwargs.get("host"):
        attributes["server.address"] = str(kwargs["host"])
    if isinstance(kwargs.get("port"), int):
        attributes["server.port"] = kwargs["port"]
    if isinstance(kwargs.get("db"), int):
        attributes["db.namespace"] = str(kwargs["db"])
    return Span(
        f"redis.{operation.lower() or 'command'}", kind=SpanKind.CLIENT, attributes=attributes
    )


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_traced(self: Any, *args: Any, **options: Any) -> Any:
        with _span_for(self, args):
            return original(self, *args, **options)

    return execute_traced


def _wrap_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_traced(self: Any, *args: Any, **options: Any) -> Any:
        with _span_for(self, args):
            return await original(self, *args, **options)

    return execute_traced


TARGETS: list[tuple[str, str, str, Callable[..., Any]]] = [
    ("redis.client", "Redis", "execute_command", _wrap),
    ("redis.asyncio.client", "Redis", "execute_command", _wrap_async),
]

"""The Redis integration against the real Redis server on 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

import spanline
from spanline import SpanKind, StatusCode
from spanline.integrations.redis import query_text
from spanline.testing import Capture

SECRET = "s3cret-value-never-in-a-span"


@pytest.fixture
def prefix() -> Iterator[str]:
    spanline.instrument("redis")
    key = f"spanline-test:{uuid.uuid4().hex}"
    yield key
    spanline.uninstrument("redis")
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.delete(*(client.keys(f"{key}*") or [f"{key}:none"]))
    client.close()


def test_commands_become_client_spans_with_keys_only(
    prefix: str, spanline_capture: Capture
) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    with spanline.span("work"):
        client.set(f"{prefix}:session", SECRET)
        assert client.get(f"{prefix}:session") == SECRET.encode()
        client.mset({f"{prefix}:a": SECRET, f"{prefix}:b": SECRET})
        client.hset(f"{prefix}:h", mapping={"field": SECRET})
        with pytest.raises(redis.RedisError):  # AuthenticationError: no password set
            client.execute_command("AUTH", SECRET)
    client.close()
    spans = [s for s in spanline_capture.spans if s.kind == SpanKind.CLIENT]
    texts = [s.attributes["db.query.text"] for s in spans]
    assert texts == [
        f"SET {prefix}:session",
        f"GET {prefix}:session",
        f"MSET {prefix}:a {prefix}:b",
        f"HSET {prefix}:h",
        "AUTH",
    ]
    assert [s.name for s in spans] == [
        "redis.set",
        "redis.get",
        "redis.mset",
        "redis.hset",
        "redis.auth",
    ]
    first = spans[0]
    assert first.attributes["db.system.name"] == "redis"
    assert first.attributes["db.operation.name"] == "SET"
    assert first.attributes["server.address"] == "127.0.0.1"
    assert first.attributes["server.port"] == 6379
    assert first.attributes["db.namespace"] == "0"
    assert first.parent is not None
    assert first.parent.name == "work"
    assert spans[-1].status == StatusCode.ERROR
    # no value, and no AUTH argument, anywhere in any span
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_asyncio_client(prefix: str, spanline_capture: Capture) -> None:
    async def main() -> bytes | None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        try:
            with spanline.span("async-work"):
                await client.set(f"{prefix}:k", SECRET)
                return await client.get(f"{prefix}:k")  # type: ignore[no-any-return]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == SECRET.encode()
    texts = [
        s.attributes["db.query.text"] for s in spanline_capture.spans if s.kind == SpanKind.CLIENT
    ]
    assert texts == [f"SET {prefix}:k", f"GET {prefix}:k"]
    assert SECRET not in json.dumps([s.to_dict() for s in spanline_capture.spans])


def test_key_extraction_rules() -> None:
    assert query_text(["set", "k", "v", "EX", 10]) == ("SET", "SET k")
    assert query_text([b"DEL", b"a", b"b"]) == ("DEL", "DEL a b")
    assert query_text(["MSET", "a", "1", "b", "2"]) == ("MSET", "MSET a b")
    assert query_text(["RENAME", "a", "b"]) == ("RENAME", "RENAME a b")
    assert query_text(["AUTH", "user", "password"]) == ("AUTH", "AUTH")
    assert query_text(["CONFIG", "SET", "requirepass", "x"]) == ("CONFIG", "CONFIG")
    assert query_text([]) == ("", "")

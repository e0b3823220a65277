"""The viewer over real HTTP: pages, JSON twins, security and the OTLP receiver, with
the real viewer (uvicorn) on 127.0.0.1 serving a real SQLite store."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanline.viewer.security import CSP
from tests.viewer_support import XSS, seed_store, viewer


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("viewer") / "store.db"
    return path, seed_store(path)


@pytest.fixture(scope="module")
def base(seeded: tuple[Path, dict[str, str]]) -> Iterator[str]:
    with viewer(seeded[0]) as url:
        yield url


def fetch(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def api(url: str) -> dict[str, object]:
    status, _, body = fetch(url)
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


def test_search_page_and_its_json_twin(base: str, seeded: tuple[Path, dict[str, str]]) -> None:
    ids = seeded[1]
    status, headers, body = fetch(base + "/?actor=user:42")
    assert status == 200
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert ids["ok"] in body.decode()
    assert ids["error"] not in body.decode()
    found = api(base + "/api/traces?actor=user:42")["traces"]
    assert isinstance(found, list)
    assert [(t["trace_id"], t["actor"], t["span_count"]) for t in found] == [
        (ids["ok"], "user:42", 3)
    ]
    errors = api(base + "/api/traces?status=error")["traces"]
    assert [t["trace_id"] for t in errors] == [ids["error"]]  # type: ignore[index]
    by_name = api(base + "/api/traces?name=db.SELECT&sort=-duration")["traces"]
    assert {t["trace_id"] for t in by_name} == {ids["ok"], ids["error"]}  # type: ignore[union-attr]


def test_bad_search_parameters_are_400_with_the_reason(base: str) -> None:
    status, _, body = fetch(base + "/api/traces?min_ms=abc")
    assert status == 400
    assert "min_ms must be a number" in json.loads(body)["error"]
    status, _, body = fetch(base + "/?window=forever")
    assert status == 400
    assert b"window must be one of" in body


def test_trace_json_has_both_id_forms_records_and_the_chain(
    base: str, seeded: tuple[Path, dict[str, str]]
) -> None:
    ids = seeded[1]
    trace = api(f"{base}/api/traces/{ids['ok']}")
    assert trace["chain"].startswith("user:42 > orders.Place(op_")  # type: ignore[union-attr]
    by_hex = api(f"{base}/api/traces/{trace['trace_hex']}")
    assert by_hex["trace_id"] == ids["ok"]
    spans = {s["name"]: s for s in trace["spans"]}  # type: ignore[union-attr]
    assert spans["stage:price"]["records"]["amount_cents"] == 1299
    assert spans["stage:price"]["records"]["added"] == []
    assert spans["db.SELECT"]["parent_span_id"] == spans["orders.Place"]["span_id"]
    status, headers, _ = fetch(f"{base}/api/traces/{ids['ok']}?download=1")
    assert status == 200
    assert headers["content-disposition"] == f'attachment; filename="{ids["ok"]}.json"'
    assert fetch(f"{base}/api/traces/tr_missing")[0] == 404
    assert fetch(f"{base}/traces/tr_missing")[0] == 404


def test_span_strings_are_escaped_in_html(base: str, seeded: tuple[Path, dict[str, str]]) -> None:
    _, _, body = fetch(base + "/?actor=user:9")
    page = body.decode()
    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_operations_page_and_twin(base: str) -> None:
    data = api(base + "/api/operations?window=all")
    names = {op["name"]: op for op in data["operations"]}  # type: ignore[union-attr]
    assert names["orders.Place"]["count"] == 2
    assert names["orders.Place"]["error_rate"] == 0.5
    status, _, body = fetch(base + "/operations?window=all")
    assert status == 200
    assert b"orders.Place" in body
    assert b"50.0%" in body


def test_foreign_host_names_are_refused(base: str) -> None:
    status, _, _ = fetch(base + "/", headers={"Host": "attacker.example:4318"})
    assert status == 421


def test_otel_sdk_exports_to_the_viewer(base: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-java-ish"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces")))
    tracer = provider.get_tracer("sdk-test")
    with tracer.start_as_current_span("GET /cart") as root:
        with tracer.start_as_current_span("redis.get"):
            pass
        trace_hex = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()
    trace = api(f"{base}/api/traces/{trace_hex}")
    assert trace["services"] == ["checkout-java-ish"]
    assert sorted(s["name"] for s in trace["spans"]) == ["GET /cart", "redis.get"]  # type: ignore[union-attr]
    assert "checkout-java-ish" in api(base + "/api/services")["services"]  # type: ignore[operator]


def test_otlp_json_gzip_and_bad_bodies(base: str) -> None:
    trace_hex = "5b8efff798038103d269b633813fc60c"
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "py-json"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_hex,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json span",
                                "kind": 2,
                                "startTimeUnixNano": str(time.time_ns()),
                                "endTimeUnixNano": str(time.time_ns() + 1000),
                            }
                        ]
                    }
                ],
            }
        ]
    }
    body = gzip.compress(json.dumps(document).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, answer = fetch(base + "/v1/traces", body, headers)
    assert (status, json.loads(answer)) == (200, {})
    assert api(f"{base}/api/traces/{trace_hex}")["spans"][0]["name"] == "json span"  # type: ignore[index]
    status, _, answer = fetch(base + "/v1/traces", b"{oops", {"Content-Type": "application/json"})
    assert status == 400
    assert "not valid JSON" in json.loads(answer)["message"]
    status, _, _ = fetch(base + "/v1/traces", b"x", {"Content-Type": "text/plain"})
    assert status == 415
    # the earlier spans are still there
    assert api(f"{base}/api/traces/{trace_hex}")["span_count"] == 1


def test_oversized_bodies_are_413(seeded: tuple[Path, dict[str, str]]) -> None:
    with viewer(seeded[0], max_body=1000) as url:
        headers = {"Content-Type": "application/x-protobuf"}
        status, _, answer = fetch(url + "/v1/traces", b"\0" * 5000, headers)
        assert status == 413
        assert b"larger than 1000 bytes" in answer
        bomb = gzip.compress(b"\0" * 100_000)
        status, _, _ = fetch(url + "/v1/traces", bomb, {**headers, "Content-Encoding": "gzip"})
        assert status == 413


def test_a_public_address_needs_the_token(seeded: tuple[Path, dict[str, str]]) -> None:
    with viewer(seeded[0], host="0.0.0.0", token="s3cret-token") as url:  # noqa: S104
        assert fetch(url + "/api/traces")[0] == 401
        assert fetch(url + "/api/traces", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert (
            fetch(url + "/api/traces", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        )
        assert fetch(url + "/api/traces?token=%C3%A9")[0] == 401  # non-ASCII: no crash
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as raised:
            opener.open(url + "/?token=s3cret-token&actor=user:42")
        redirect = raised.value
        assert redirect.code == 303
        assert redirect.headers["location"] == "/?actor=user%3A42"
        cookie = redirect.headers["set-cookie"].split(";")[0]
        redirect.close()
        assert fetch(url + "/api/traces", headers={"Cookie": cookie})[0] == 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None

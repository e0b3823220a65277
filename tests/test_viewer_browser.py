"""The viewer in a real headless Chromium (Debian's ``chromium``, driven by Playwright
through ``executable_path``), against the real viewer on 127.0.0.1.

The screenshots in docs/screenshots/ are written by these tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.viewer_support import XSS, seed_store, viewer

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"


def chromium_path() -> str:
    found = os.environ.get("SPANLINE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Debian's chromium is needed (apt install chromium; .ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("browser") / "store.db"
    return path, seed_store(path)


@pytest.fixture(scope="module")
def base(seeded: tuple[Path, dict[str, str]]) -> Iterator[str]:
    with viewer(seeded[0]) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert dialogs == [], f"a page opened a dialog: {dialogs}"
    assert errors == [], f"script errors: {errors}"


def test_search_filter_by_actor_then_open_the_trace(
    page: Page, base: str, seeded: tuple[Path, dict[str, str]]
) -> None:
    ids = seeded[1]
    page.goto(base + "/")
    expect(page.locator("#trace-table tbody tr")).to_have_count(3)
    page.fill("input[name=actor]", "user:42")
    page.click("button[type=submit]")
    rows = page.locator("#trace-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("orders.Place")
    expect(rows.first).to_contain_text("user:42")
    expect(page.locator("#scatter circle")).to_have_count(1)
    page.screenshot(path=SHOTS / "search.png", full_page=True)

    rows.first.locator("a").first.click()
    expect(page).to_have_url(f"{base}/traces/{ids['ok']}")
    expect(page.locator(".wf-row")).to_have_count(3)
    expect(page.locator(".chain")).to_contain_text("user:42 > orders.Place(op_")
    expect(page.locator(".wf-bar.critical").first).to_be_visible()


def test_expand_collapse_and_read_records(
    page: Page, base: str, seeded: tuple[Path, dict[str, str]]
) -> None:
    page.goto(f"{base}/traces/{seeded[1]['ok']}")
    rows = page.locator(".wf-row")
    expect(rows).to_have_count(3)
    root = rows.first
    root.locator(".toggle").click()
    expect(page.locator(".wf-row.hidden")).to_have_count(2)
    root.locator(".toggle").click()
    expect(page.locator(".wf-row.hidden")).to_have_count(0)

    page.locator(".wf-row", has_text="stage:price").click()
    details = page.locator("#details")
    expect(details.locator("h3")).to_have_text("stage:price")
    expect(details).to_contain_text("amount_cents")
    expect(details).to_contain_text("1299")
    expect(details).to_contain_text("Context delta")
    page.fill("#find", "amount_cents")  # found in the records
    expect(page.locator(".wf-row.hit")).to_have_count(1)
    expect(page.locator("#find-count")).to_have_text("1 matching span")
    page.screenshot(path=SHOTS / "trace.png", full_page=True)


def test_error_trace_shows_the_exception(
    page: Page, base: str, seeded: tuple[Path, dict[str, str]]
) -> None:
    page.goto(f"{base}/traces/{seeded[1]['error']}")
    page.locator(".wf-row", has_text="orders.Place").click()
    details = page.locator("#details")
    expect(details.locator(".badge.error")).to_be_visible()
    expect(details).to_contain_text("ValueError")
    expect(details.locator("pre.stack")).to_contain_text("card declined")


def test_a_span_named_like_markup_renders_as_text(
    page: Page, base: str, seeded: tuple[Path, dict[str, str]]
) -> None:
    page.goto(base + "/?actor=user:9")
    expect(page.locator("#trace-table tbody tr").first).to_contain_text(XSS)
    page.goto(f"{base}/traces/{seeded[1]['xss']}")
    label = page.locator(".wf-row .label").first
    expect(label).to_have_text(XSS)
    label.click()
    expect(page.locator("#details h3")).to_have_text(XSS)
    expect(page.locator("#details")).to_contain_text(XSS)
    assert page.locator("img").count() == 0  # nothing was parsed as markup
    # the page fixture fails the test if alert() ran


def test_a_new_trace_arrives_live_after_an_otlp_post(page: Page, base: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    page.goto(base + "/")
    expect(page.locator("#live.on")).to_be_visible()
    before = page.locator("#trace-table tbody tr").count()
    provider = TracerProvider(resource=Resource.create({"service.name": "live-sdk"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces")))
    with provider.get_tracer("live").start_as_current_span("live checkout"):
        pass
    provider.shutdown()
    expect(page.locator("#trace-table tbody tr", has_text="live checkout")).to_have_count(1)
    assert page.locator("#trace-table tbody tr").count() == before + 1


def test_operations_page(page: Page, base: str) -> None:
    page.goto(base + "/operations?window=all")
    table = page.locator("#operations-table")
    expect(table.locator("tr", has_text="orders.Place")).to_contain_text("50.0%")
    page.screenshot(path=SHOTS / "operations.png", full_page=True)

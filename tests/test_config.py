from __future__ import annotations

import os
import subprocess
import sys

import pytest

import spanline
from spanline.core.config import ENVIRONMENT_VARIABLES
from spanline.testing import Capture


def test_defaults(spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = spanline.configure()
    assert settings.enabled is True
    assert settings.ring_size == 100
    assert settings.payload_secret is None


def test_argument_beats_environment(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANLINE_RING_SIZE", "7")
    assert spanline.configure().ring_size == 7
    assert spanline.configure(ring_size=9).ring_size == 9
    monkeypatch.setenv("SPANLINE_ENABLED", "no")
    assert spanline.configure().enabled is False
    assert spanline.configure(enabled=True).enabled is True


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SPANLINE_ENABLED", "maybe", "SPANLINE_ENABLED='maybe' is not a boolean; use one of"),
        ("SPANLINE_RING_SIZE", "lots", "SPANLINE_RING_SIZE='lots' is not an integer"),
        ("SPANLINE_RING_SIZE", "-1", "SPANLINE_RING_SIZE=-1 is invalid; use a whole number >= 0"),
    ],
)
def test_invalid_environment_is_a_clear_error_at_configure(
    spanline_capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(spanline.ConfigError) as raised:
        spanline.configure()
    assert message in str(raised.value)


def test_invalid_arguments_are_clear_errors(spanline_capture: Capture) -> None:
    with pytest.raises(spanline.ConfigError, match=r"configure\(ring_size=...\)='big'"):
        spanline.configure(ring_size="big")  # type: ignore[arg-type]
    with pytest.raises(spanline.ConfigError, match="use True or False"):
        spanline.configure(enabled="yes")  # type: ignore[arg-type]
    with pytest.raises(spanline.ConfigError, match="must be a string"):
        spanline.configure(payload_secret=123)  # type: ignore[arg-type]


def test_invalid_environment_at_import_warns_and_keeps_the_app_running() -> None:
    env = {**os.environ, "SPANLINE_RING_SIZE": "lots"}
    done = subprocess.run(
        [sys.executable, "-c", "import spanline; print(spanline.settings.ring_size)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "100"
    assert "SPANLINE_RING_SIZE='lots' is not an integer" in done.stderr


def test_ring_size_zero_keeps_nothing(spanline_capture: Capture) -> None:
    spanline.configure(ring_size=0)
    with spanline.span("s"):
        pass
    assert spanline.tracer.completed == []
    assert spanline_capture.names() == ["s"]


def test_configure_keeps_earlier_arguments(spanline_capture: Capture) -> None:
    spanline.configure(enabled=False, payload_secret="k")
    settings = spanline.configure(ring_size=10)
    assert settings.enabled is False
    assert settings.payload_secret == "k"
    assert settings.ring_size == 10
    with pytest.raises(spanline.ConfigError):
        spanline.configure(ring_size=-5)
    assert spanline.settings.ring_size == 10  # a failed call changes nothing


def test_empty_environment_values_mean_unset(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SPANLINE_RING_SIZE",
    ):
        monkeypatch.setenv(name, "  ")
    settings = spanline.configure()
    assert settings.enabled is True
    assert settings.ring_size == 100
    assert repr(settings.sampler) == "ParentBased(AlwaysOn())"


def test_configure_checks_every_variable_and_changes_nothing_on_error(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanline.export.setup import installed

    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "soon")
    with pytest.raises(spanline.ConfigError, match="OTEL_BSP_SCHEDULE_DELAY='soon'"):
        spanline.configure(service_name="checkout", enabled=False, exporter="console")
    assert spanline.settings.service_name is None
    assert spanline.settings.enabled is True
    assert installed() == []
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999")
    with pytest.raises(
        spanline.ConfigError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT=.*not a valid URL"
    ):
        spanline.configure()


def test_named_ratio_sampler_reads_its_argument(
    spanline_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    sampler = spanline.configure(sampler="parentbased_traceidratio").sampler
    assert repr(sampler) == "ParentBased(TraceIdRatio(0.1))"

"""The built-in probe against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from helpers import http_server

from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.http_probe import HttpProbeSource, Outcome, summarise
from chaosrunner.spec.models import SLO


def slo(url: str, stat: str = "availability", **probe: object) -> SLO:
    return SLO.model_validate({"sli": {"http": {"url": url, **probe}, "stat": stat},
                               "target": "99%" if stat == "availability" else "1s",
                               "op": ">=" if stat == "availability" else "<"})


async def observe(source: HttpProbeSource, seconds: float) -> list:  # type: ignore[type-arg]
    await source.start()
    try:
        await asyncio.sleep(seconds)
        return [await source.read(seconds)]
    finally:
        await source.close()


def test_summary_statistics_are_exact() -> None:
    outcomes = [Outcome(True, i / 100) for i in range(1, 100)] + [Outcome(False, 1.0, "HTTP 503")]
    reading = summarise(outcomes, "p99", "http://x")
    assert reading.total == 100 and reading.good == 99
    assert reading.stats["availability"] == 0.99
    assert reading.stats["p50"] == 0.50 and reading.stats["p99"] == 0.99
    # Latency statistics are over the 99 successful requests: the failed one is left out.
    assert reading.stats["max"] == 0.99 and reading.value == 0.99
    assert "1 of 100 requests" in (reading.note or "") and "HTTP 503" in (reading.note or "")
    assert summarise([], "availability", "http://x").value is None


def test_rate_is_kept_and_latency_measured(tmp_path: Path) -> None:
    with http_server(tmp_path) as (url, _, _):
        source = HttpProbeSource("p", slo(url, rate="40/s"), None, SourceContext())
        began = time.monotonic()
        [reading] = asyncio.run(observe(source, 1.5))
        elapsed = time.monotonic() - began
    assert reading.value == 1.0
    assert reading.total is not None and 0.6 * 40 * 1.5 <= reading.total <= 40 * elapsed + 1
    assert 0 < reading.stats["p50"] < 1.0


def test_hanging_target_never_piles_up_requests() -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(1000)  # accepts into the backlog, never answers
    url = f"http://127.0.0.1:{hang.getsockname()[1]}/"
    source = HttpProbeSource("p", slo(url, rate="100/s", timeout="500ms", max_in_flight=5),
                             None, SourceContext())
    peak = 0

    async def scenario() -> object:
        nonlocal peak
        await source.start()
        try:
            for _ in range(40):
                await asyncio.sleep(0.025)
                peak = max(peak, source.traffic.in_flight)
            return await source.read(1.0)
        finally:
            await source.close()

    try:
        reading = asyncio.run(scenario())
    finally:
        hang.close()
    assert peak <= 5
    assert source.traffic.shed > 0
    assert reading.value == 0.0  # type: ignore[attr-defined]
    assert "shed" in (reading.note or "") or "Timeout" in (reading.note or "")  # type: ignore[attr-defined]
    assert source.traffic.in_flight == 0 and not source.traffic._requests


def test_refused_connection_is_an_error_with_its_reason() -> None:
    source = HttpProbeSource("p", slo("http://127.0.0.1:9/", rate="20/s"), None, SourceContext())
    [reading] = asyncio.run(observe(source, 0.5))
    assert reading.value == 0.0
    assert "ConnectError" in reading.note


def test_slos_on_the_same_probe_share_its_traffic(tmp_path: Path) -> None:
    with http_server(tmp_path) as (url, _, _):
        context = SourceContext()
        availability = HttpProbeSource("a", slo(url, rate="20/s"), None, context)
        latency = HttpProbeSource("l", slo(url, "p99", rate="20/s"), None, context)
        assert availability.traffic is latency.traffic

        async def scenario() -> tuple:  # type: ignore[type-arg]
            await availability.start()
            await latency.start()
            await asyncio.sleep(1.0)
            result = (await availability.read(1), await latency.read(1))
            await availability.close()
            await latency.close()
            return result

        a, lat = asyncio.run(scenario())
    assert a.total == lat.total and a.total == availability.traffic.sent
    assert a.value == 1.0 and lat.value == pytest.approx(a.stats["p99"])


def test_latency_of_an_interval_without_a_successful_request_is_no_data() -> None:
    """Issue 12.9: ten refused connections never 'hold' a p99 of 0.16 ms."""
    failed = [Outcome(False, 0.00016, "ConnectError: refused") for _ in range(10)]
    for stat in ("p99", "p50", "max", "mean", "min"):
        reading = summarise(failed, stat, "http://x")
        assert reading.value is None, stat
        assert reading.latencies == ()
        assert "no request to http://x succeeded" in (reading.note or "")
    assert summarise(failed, "availability", "http://x").value == 0.0


def test_latency_statistics_are_over_the_successful_requests_only() -> None:
    outcomes = [Outcome(True, 0.2), Outcome(True, 0.4), Outcome(False, 0.001, "HTTP 500")]
    reading = summarise(outcomes, "min", "http://x")
    assert reading.value == 0.2 and reading.stats["max"] == 0.4
    assert reading.latencies == (0.2, 0.4)
    assert reading.stats["availability"] == 2 / 3

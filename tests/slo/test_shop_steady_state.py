"""steady-states/shop.yaml: the seed's SLOs, measured on the real demo shop by Prometheus."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_fixture import run_prometheus
from services import need

from chaosrunner.cli.main import main
from chaosrunner.demo.shop import Shop
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.prometheus import PrometheusSource
from chaosrunner.spec.validate import load_steady_state

SHOP_FILE = Path(__file__).parents[2] / "steady-states" / "shop.yaml"
REPLICAS = 2


def test_shop_file_keeps_the_seed_shape() -> None:
    steady = load_steady_state(SHOP_FILE)
    availability = steady.service_level_objectives["api_availability"]
    latency = steady.service_level_objectives["api_latency"]
    assert availability.sli.kind == "promql" and availability.is_ratio
    assert availability.target == 0.999 and availability.window == 30 * 86400
    assert availability.error_budget_policy == "halt_deployments_at_50_percent_burn"
    assert "job='checkout'" in (availability.sli.promql or "")
    assert latency.op == "<" and latency.target == 0.5 and not latency.is_ratio
    assert latency.budget == pytest.approx(0.01)
    assert "http_request_duration_seconds_bucket{job='checkout'}" in (latency.sli.promql or "")


def _free_run(count: int) -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports on 127.0.0.1")


def _orders(url: str, count: int) -> list[int]:
    with httpx.Client(timeout=5.0) as client:
        return [client.post(url).status_code for _ in range(count)]


async def _read(steady_url: str, name: str) -> float | None:
    steady = load_steady_state(SHOP_FILE).model_copy(update={"prometheus": steady_url})
    source = PrometheusSource(name, steady.service_level_objectives[name], steady,
                              SourceContext())
    try:
        return (await source.read(1.0)).value
    finally:
        await source.close()


def test_shop_slos_against_the_demo_shop(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    need("prometheus", shutil.which("prometheus") is not None, "apt-get install -y prometheus")
    base = _free_run(REPLICAS + 1)
    shop = Shop.start(base_port=base, replicas=REPLICAS, state_dir=tmp_path / "shop",
                      shop_name=f"slotest{random.randrange(1 << 30):x}")
    with shop:
        targets = {"checkout": [f"127.0.0.1:{base}"],
                   "payments": [f"127.0.0.1:{base + i}" for i in range(1, REPLICAS + 1)]}
        with run_prometheus(tmp_path / "prom", targets) as prom:
            # A series is born with its first request: rate() needs Prometheus to have seen
            # it before the traffic we measure, or the first count is never a rate.
            assert _orders(shop.checkout_endpoint, 1) == [200]
            prom.wait_for("http_requests_total{job='checkout',code='200'}")
            assert set(_orders(shop.checkout_endpoint, 50)) == {200}
            prom.wait_for("sum(rate(http_requests_total{job='checkout'}[1m])) > 0")
            assert main(["budget", str(SHOP_FILE), "--prometheus", prom.url,
                         "--output", "json"]) == 0
            rows = {row["slo"]: row for row in json.loads(capsys.readouterr().out)["slos"]}
            assert rows["api_availability"]["sli"] == pytest.approx(1.0)
            assert rows["api_availability"]["burn_rates"]["5m"] in (None, 0.0)
            assert 0.0 < rows["api_latency"]["sli"] < 0.5

            # Every payments replica gone: checkout answers 503 and the SLI shows it.
            for service in shop.payments:
                service.process.terminate()
                service.process.wait(timeout=10)
            assert _orders(shop.checkout_endpoint, 1) == [503]
            prom.wait_for("http_requests_total{job='checkout',code='503'}")
            assert set(_orders(shop.checkout_endpoint, 50)) == {503}
            prom.wait_for("sum(rate(http_requests_total{job='checkout',code='503'}[1m])) > 0")
            availability = asyncio.run(_read(prom.url, "api_availability"))
            assert availability is not None and availability < 0.9

"""How long one sampling round of 10 PromQL SLIs takes, concurrent vs sequential.

Starts Debian's `prometheus` (1 s scrape) against a synthetic exporter on 127.0.0.1,
builds 10 PrometheusSource SLIs (availability ratios, PromQL strings, a p99) and times
rounds of `read()`: all 10 awaited together (asyncio.gather, as the engine samples) and
one after the other (the baseline, same run). Then the Prometheus share of an abort's
reaction time: the exporter flips to 100 % errors and a ratio SLI is polled every 50 ms
until its reading falls below 99.9 % (scrape interval + query).

    .venv/bin/python bench/prometheus_bench.py [--rounds 30] [--flips 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "slo")]

from prometheus_fixture import run_prometheus  # noqa: E402
from synthetic_traffic import SyntheticTraffic  # noqa: E402

from chaosrunner.slo.sources.base import SourceContext  # noqa: E402
from chaosrunner.slo.sources.prometheus import PrometheusSource  # noqa: E402
from chaosrunner.spec.models import SteadyState  # noqa: E402

GOOD = 'sum(increase(http_requests_total{job="shop",code!~"5.."}[$window]))'
TOTAL = 'sum(increase(http_requests_total{job="shop"}[$window]))'


def slis() -> dict[str, object]:
    """Ten SLIs of the kinds a steady-state file holds."""
    found: dict[str, object] = {}
    for i, window in enumerate(("5s", "10s", "15s", "30s", "1m", "2m")):
        found[f"availability_{i}"] = (
            f'sum(rate(http_requests_total{{job="shop",code!~"5.."}}[{window}])) / '
            f'sum(rate(http_requests_total{{job="shop"}}[{window}]))')
    found["p99"] = ('histogram_quantile(0.99, sum(rate('
                    'http_request_duration_seconds_bucket{job="shop"}[10s])) by (le))')
    found["p50"] = ('histogram_quantile(0.5, sum(rate('
                    'http_request_duration_seconds_bucket{job="shop"}[10s])) by (le))')
    found["ratio_a"] = {"ratio": {"good": GOOD, "total": TOTAL}}
    found["ratio_b"] = {"ratio": {"good": GOOD, "total": TOTAL}}
    return found


def sources(url: str) -> list[PrometheusSource]:
    objectives = {name: {"sli": sli, "target": 0.5 if name.startswith("p") else 0.999,
                         "op": "<" if name.startswith("p") else ">="}
                  for name, sli in slis().items()}
    steady = SteadyState.model_validate({"apiVersion": "chaosrunner/v1", "kind": "SteadyState",
                                         "name": "bench", "prometheus": url,
                                         "service_level_objectives": objectives})
    return [PrometheusSource(name, slo, steady, SourceContext())
            for name, slo in steady.service_level_objectives.items()]


async def time_rounds(url: str, rounds: int) -> tuple[list[float], list[float]]:
    group = sources(url)
    for source in group:
        await source.start()
    concurrent: list[float] = []
    sequential: list[float] = []
    try:
        for _ in range(rounds):  # interleaved, so both see the same server state
            began = time.perf_counter()
            readings = await asyncio.gather(*(source.read(1.0) for source in group))
            concurrent.append(time.perf_counter() - began)
            assert all(reading.value is not None for reading in readings), readings
            began = time.perf_counter()
            for source in group:
                await source.read(1.0)
            sequential.append(time.perf_counter() - began)
    finally:
        for source in group:
            await source.close()
    return concurrent, sequential


async def time_detection(url: str, traffic: SyntheticTraffic, flips: int) -> list[float]:
    """Seconds from the exporter going bad to a ratio SLI reading below 99.9 %."""
    source = next(s for s in sources(url) if s.name == "ratio_a")
    delays: list[float] = []
    await source.start()
    try:
        for _ in range(flips):
            traffic.set(error_ratio=0.0)
            await until(source, lambda v: v is not None and v >= 0.9999, 30.0)
            await asyncio.sleep(0.37 * (len(delays) + 1) % 1.0)  # vary the scrape phase
            traffic.set(error_ratio=1.0)
            began = time.perf_counter()
            await until(source, lambda v: v is not None and v < 0.999, 30.0)
            delays.append(time.perf_counter() - began)
    finally:
        traffic.set(error_ratio=0.0)
        await source.close()
    return delays


async def until(source: PrometheusSource, ok: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = (await source.read(1.0)).value
        if ok(value):  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the SLI did not change in time")


def describe(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (f"{label:<34} median {statistics.median(samples) * 1000:8.1f} ms   "
            f"p90 {p90 * 1000:8.1f} ms   n={len(samples)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--flips", type=int, default=5)
    args = parser.parse_args()
    traffic = SyntheticTraffic(rate=200.0, error_ratio=0.0)
    address = traffic.serve()
    try:
        with tempfile.TemporaryDirectory() as directory, \
                run_prometheus(Path(directory), {"shop": [address]}) as prom:
            prom.wait_for('count_over_time(http_requests_total{job="shop"}[2m]) >= 12')
            concurrent, sequential = asyncio.run(time_rounds(prom.url, args.rounds))
            print(describe("10 SLIs, concurrent (gather)", concurrent))
            print(describe("10 SLIs, sequential (baseline)", sequential))
            print(f"{'speed-up (median)':<34} "
                  f"{statistics.median(sequential) / statistics.median(concurrent):8.2f}x")
            delays = asyncio.run(time_detection(prom.url, traffic, args.flips))
            print(describe("errors start -> SLI below target", delays))
    finally:
        traffic.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

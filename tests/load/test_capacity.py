"""The capacity planner: its arithmetic, and `chaosrunner capacity` against a real Prometheus."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_fixture import PrometheusFactory, prometheus  # noqa: F401  (fixture)

from chaosrunner.cli.main import main
from chaosrunner.errors import InvalidInput
from chaosrunner.load.capacity import MONTH, Trend, fit_slope, parse_growth, plan_capacity

STEADY = """apiVersion: chaosrunner/v1
kind: SteadyState
name: cap
prometheus: {url}
service_level_objectives:
  up: {{sli: "up", target: 1, op: ">="}}
"""


def test_growth_is_monthly_and_compounding() -> None:
    assert parse_growth("10%/month") == pytest.approx(0.10)
    assert parse_growth("30%/year") == pytest.approx(1.3 ** (30 / 365) - 1)
    with pytest.raises(InvalidInput, match="10%/month"):
        parse_growth("ten percent")


def test_months_until_the_breaking_point_minus_headroom() -> None:
    plan = plan_capacity("q", 100.0, 6, 0.30, 0.10, None, 200.0)
    assert plan.limit == pytest.approx(140.0)
    assert plan.months_to_limit == pytest.approx(math.log(1.4) / math.log(1.1), abs=0.01)
    assert plan.forecast[6] == pytest.approx(100 * 1.1 ** 6, rel=1e-4)
    assert plan.required_capacity == pytest.approx(100 * 1.1 ** 6 / 0.7, rel=1e-4)
    assert "3.53 months" in plan.recommendation


def test_linear_trend_and_the_edges() -> None:
    trend = Trend(slope_per_second=10 / MONTH, points=10, window_seconds=MONTH)
    plan = plan_capacity("q", 100.0, 6, 0.5, None, trend, 300.0)
    assert plan.forecast[:3] == [100.0, 110.0, 120.0]
    assert plan.months_to_limit == pytest.approx(5.0)
    assert plan_capacity("q", 200.0, 6, 0.5, 0.1, None, 300.0).months_to_limit == 0.0
    assert plan_capacity("q", 100.0, 6, 0.3, 0.0, None, 300.0).months_to_limit is None
    assert plan_capacity("q", 100.0, 6, 0.3, 0.1, None, None).limit is None
    assert fit_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)


@pytest.fixture
def usage() -> Iterator[tuple[str, dict[str, float]]]:
    """An exporter whose `usage` gauge is 100 + slope × seconds since start."""
    registry, knobs, start = CollectorRegistry(), {"slope": 0.0}, time.monotonic()
    Gauge("usage", "test usage", registry=registry).set_function(
        lambda: 100 + knobs["slope"] * (time.monotonic() - start))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", knobs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_capacity_command_against_prometheus(tmp_path: Path, usage: tuple[str, dict[str, float]],
                                             prometheus: PrometheusFactory,  # noqa: F811
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target, knobs = usage
    knobs["slope"] = 2.0
    prom = prometheus({"app": [target]})
    steady = tmp_path / "steady.yaml"
    steady.write_text(STEADY.format(url=prom.url))
    prom.wait_for("count_over_time(usage[1m]) >= 8")
    # Given growth: the current value and compounding.
    code = main(["capacity", str(steady), "--usage", "usage", "--growth", "10%/month",
                 "--months", "6", "--headroom", "30%", "--breaking-point", "1000/s",
                 "--output", "json", "--report-dir", str(tmp_path / "cap")])
    given = json.loads(capsys.readouterr().out)
    # No growth given: the trend over the window (the gauge rises 2 per second).
    code_trend = main(["capacity", str(steady), "--usage", "usage", "--window", "1m",
                       "--breaking-point", "1000/s", "--output", "json"])
    trend = json.loads(capsys.readouterr().out)
    assert main(["capacity", str(steady), "--usage", "usage", "--growth", "10%/month",
                 "--breaking-point", "1000/s"]) == 0
    text = capsys.readouterr().out
    assert code == 0 and code_trend == 0
    assert 100 < given["current"] < 100 + 2 * 120
    assert given["limit"] == pytest.approx(700.0)
    assert given["months_to_limit"] == pytest.approx(
        math.log(700 / given["current"]) / math.log(1.1), abs=0.02)
    assert trend["model"] == "linear"
    assert trend["trend"]["slope_per_second"] == pytest.approx(2.0, rel=0.25)
    assert trend["months_to_limit"] == pytest.approx(0.0, abs=0.001)  # 2/s reaches 700 fast
    html = (tmp_path / "cap" / "capacity.html").read_text()
    assert "<svg" in html and "breaking point" in html and "<polyline" in html
    assert "months to limit" in text


def test_breaking_point_from_a_search_report_and_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steady = tmp_path / "steady.yaml"
    steady.write_text(STEADY.format(url=f"http://127.0.0.1:{free_port()}"))
    report = tmp_path / "run" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"search": {"held": 300.0, "broke": 450.0}}))
    # Prometheus is down: the breaking point was read, the usage cannot be: exit 1.
    assert main(["capacity", str(steady), "--usage", "x", "--growth", "5%/month",
                 "--breaking-point", str(report.parent)]) == 1
    assert "cannot be reached" in capsys.readouterr().err
    for bad in (["--growth", "fast"], ["--headroom", "150%"], ["--breaking-point", "lots"],
                ["--months", "0"]):
        assert main(["capacity", str(steady), "--usage", "x", *bad]) == 4, bad
        assert "chaosrunner:" in capsys.readouterr().err

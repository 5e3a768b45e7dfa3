"""Firing alerts as stop conditions, with a real Prometheus whose rule fires on a gauge this
test controls, and Debian's Alertmanager receiving what Prometheus sends."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alerting_fixture import Service, run_alertmanager
from helpers import wait_until
from observe_run import Runner
from observe_servers import Recorder, Request, _Handler, serving
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_fixture import PrometheusFactory, PrometheusServer, prometheus  # noqa: F401

from chaosrunner.testing.fakes import World

RULE = {"alert": "ChaosTestAlarm", "expr": "chaos_test_alarm > 0", "for": "0s",
        "labels": {"severity": "critical", "service": "checkout"}}
MATCHERS = """['severity="critical"', 'service=~"checkout|payments"']"""


@dataclass
class Alarm:
    """A gauge Prometheus scrapes; its rule fires while the gauge is above 0."""

    gauge: Gauge
    address: str

    def set(self, value: float) -> None:
        self.gauge.set(value)


@pytest.fixture
def alarm() -> Iterator[Alarm]:
    registry = CollectorRegistry()
    gauge = Gauge("chaos_test_alarm", "what the test's alert rule watches", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield Alarm(gauge, f"127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def alertmanager_firing(manager: Service) -> bool:
    return any(a["labels"].get("alertname") == "ChaosTestAlarm"
               for a in get_json(manager.url + "/api/v2/alerts?active=true"))


def prometheus_firing(prom: PrometheusServer) -> bool:
    alerts = get_json(prom.url + "/api/v1/alerts")["data"]["alerts"]
    return any(a["state"] == "firing" for a in alerts)


@pytest.fixture
def stack(tmp_path: Path, alarm: Alarm,
          prometheus: PrometheusFactory) -> Iterator[tuple[Service, PrometheusServer]]:  # noqa: F811
    with run_alertmanager(tmp_path / "alertmanager") as manager:
        prom = prometheus({"alarm": [alarm.address]}, rules=[RULE],
                          alertmanagers=[manager.url.removeprefix("http://")])
        yield manager, prom


def alerts_yaml(source: str, url: str, matchers: str = MATCHERS) -> str:
    return f"""
abort:
  alerts: {{{source}: "{url}", matchers: {matchers}}}
"""


def test_a_firing_alert_refuses_the_start(run_experiment: Runner, world: World, alarm: Alarm,
                                          stack: tuple[Service, PrometheusServer]) -> None:
    manager, _ = stack
    alarm.set(1)
    assert wait_until(lambda: alertmanager_firing(manager), timeout=90, step=0.25), \
        "Alertmanager never had the alert"
    outcome = run_experiment(alerts_yaml("alertmanager", manager.url))
    assert outcome.code == 3, outcome.err
    reason = outcome.report["reason"]
    assert "alert ChaosTestAlarm is firing" in reason and "not starting" in reason
    assert world.log == []


def test_an_alert_that_does_not_match_does_not_refuse(
        run_experiment: Runner, alarm: Alarm, stack: tuple[Service, PrometheusServer]) -> None:
    manager, _ = stack
    alarm.set(1)
    assert wait_until(lambda: alertmanager_firing(manager), timeout=90, step=0.25), \
        "Alertmanager never had the alert"
    outcome = run_experiment(alerts_yaml("alertmanager", manager.url,
                                         """['severity="page"']"""))
    assert outcome.code == 0, outcome.report["reason"]


def fire_when_injected(world: World, alarm: Alarm) -> None:
    class FiringSet(set[str]):
        """The fault trips the alarm the moment it lands."""

        def add(self, item: str) -> None:
            super().add(item)
            alarm.set(1)

    world.down = FiringSet(world.down)


@pytest.mark.parametrize("source", ["alertmanager", "prometheus"])
def test_an_alert_that_starts_firing_aborts_the_run(
        run_experiment: Runner, world: World, alarm: Alarm, source: str,
        stack: tuple[Service, PrometheusServer]) -> None:
    manager, prom = stack
    alarm.set(0)
    fire_when_injected(world, alarm)
    url = manager.url if source == "alertmanager" else prom.url
    started = time.monotonic()
    outcome = run_experiment(alerts_yaml(source, url), duration="120s")
    assert outcome.code == 2, outcome.err
    assert outcome.report["abort"]["reason"].startswith("alert ChaosTestAlarm is firing")
    assert world.down == set()
    assert time.monotonic() - started < 100
    fired = datetime.fromisoformat(outcome.report["faults"][0]["injected_at"])
    aborted = datetime.fromisoformat(outcome.report["abort"]["at"])
    print(f"\n{source}: abort {(aborted - fired).total_seconds():.2f}s after the alarm was set")


class FlakyAlerts(Recorder):
    """An alert source that answers "no alerts" until it is told to fail."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.failing = False

    def answer(self, request: Request) -> tuple[int, str, bytes]:
        if self.failing:
            return 503, "text/plain", b"down for maintenance"
        return 200, "application/json", b"[]"


def test_an_unreachable_source_refuses_the_start(run_experiment: Runner, world: World) -> None:
    outcome = run_experiment(alerts_yaml("alertmanager", "http://127.0.0.1:1"))
    assert outcome.code == 3
    assert "cannot tell whether it is safe to start" in outcome.report["reason"]
    assert world.log == []


def test_a_source_that_goes_away_aborts_after_the_no_data_limit(run_experiment: Runner,
                                                                 world: World) -> None:
    with serving(FlakyAlerts()) as source:
        class FailingSet(set[str]):
            def add(self, item: str) -> None:
                super().add(item)
                source.failing = True

        world.down = FailingSet(world.down)
        outcome = run_experiment(alerts_yaml("alertmanager", source.url), duration="120s")
    assert outcome.code == 2, outcome.err
    reason = outcome.report["abort"]["reason"]
    assert reason.startswith(f"Alertmanager {source.url} unreadable for 10s")
    assert "HTTP 503" in reason
    faults = outcome.report["faults"][0]
    assert faults["reverted_at"] is not None


def test_bad_matchers_are_bad_input(run_experiment: Runner) -> None:
    outcome = run_experiment(alerts_yaml("alertmanager", "http://127.0.0.1:1",
                                         """['severity=critical']"""))
    assert outcome.code == 4
    assert "abort.alerts.matchers" in outcome.err and "double quotes" in outcome.err

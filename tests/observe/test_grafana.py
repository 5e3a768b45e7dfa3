"""Grafana annotations against a FAKE Grafana (observe_servers.FakeGrafana) that checks
every request against Grafana's documented annotations API; no Grafana can be installed
here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from observe_run import Runner
from observe_servers import grafana

from chaosrunner.testing.fakes import World

TOKEN = "glsa_secret-service-account-token"


def annotations_yaml(url: str) -> str:
    return f"""
annotations:
  grafana:
    url: {url}
    token: "${{env:GRAFANA_TOKEN}}"
    dashboard_uid: chaos-dash
    tags: [team-payments]
"""


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)


def test_one_region_per_run_and_per_fault_posted_then_closed(run_experiment: Runner) -> None:
    with grafana(TOKEN) as server:
        outcome = run_experiment(annotations_yaml(server.url))
    assert outcome.code == 0, outcome.out
    assert server.errors == []
    run_id = outcome.report["run_id"]
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/api/annotations"), ("POST", "/api/annotations"),
        ("PATCH", "/api/annotations/2"), ("PATCH", "/api/annotations/1")]
    run, fault = (server.annotations[1].current, server.annotations[2].current)
    assert run["dashboardUID"] == fault["dashboardUID"] == "chaos-dash"
    assert "team-payments" in run["tags"] and "chaosrunner" in fault["tags"]
    assert f"run {run_id}" in fault["text"] and "lose-api-1" in fault["text"]
    assert "api-1" in fault["text"] and run["text"].endswith(": passed")
    assert run["time"] < fault["time"] < fault["timeEnd"] <= run["timeEnd"]
    [announced] = outcome.report["announced"]
    assert (announced["channel"], announced["sent"], announced["failed"]) == ("grafana", 4, 0)
    assert TOKEN not in outcome.everything_written()


def test_a_fault_not_taken_back_is_closed_and_says_so(run_experiment: Runner,
                                                      world: World) -> None:
    world.fail_revert = 100
    with grafana(TOKEN) as server:
        outcome = run_experiment(annotations_yaml(server.url))
    world.fail_revert = 0
    assert outcome.code == 5 and server.errors == []
    fault = server.annotations[2].current
    assert "NOT REVERTED" in fault["text"] and fault["timeEnd"] >= fault["time"]
    assert server.annotations[1].current["text"].endswith(
        outcome.report["reason"]) and "rollback_incomplete" in server.annotations[1].current["text"]


def test_a_rejecting_grafana_changes_nothing_but_is_counted(run_experiment: Runner) -> None:
    with grafana("another-token") as server:
        outcome = run_experiment(annotations_yaml(server.url))
    assert outcome.code == 0 and outcome.report["verdict"] == "passed"
    [announced] = outcome.report["announced"]
    assert announced["sent"] == 0 and announced["failed"] == 2  # two POSTs; nothing to close
    assert "Grafana annotation (POST /api/annotations)" in outcome.err and "HTTP 400" in outcome.err
    assert TOKEN not in outcome.everything_written()


def test_an_unreachable_grafana_changes_nothing(run_experiment: Runner) -> None:
    outcome = run_experiment(annotations_yaml("http://127.0.0.1:1"))
    assert outcome.code == 0
    assert outcome.report["announced"][0]["failed"] == 2


def test_the_config_file_can_hold_the_grafana_settings(run_experiment: Runner,
                                                       tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    with grafana(TOKEN) as server:
        config.write_text(annotations_yaml(server.url))
        outcome = run_experiment("", "--config", str(config))
    assert outcome.code == 0 and server.errors == []
    assert len(server.annotations) == 2
    assert all(a.current["timeEnd"] > a.current["time"] for a in server.annotations.values())


def test_credentials_in_the_url_are_not_shown(run_experiment: Runner) -> None:
    with grafana(TOKEN) as server:
        url = server.url.replace("http://", "http://admin:hunter2-in-url@")
        outcome = run_experiment(annotations_yaml(url), "--pushgateway",
                                 "http://push:also-secret@127.0.0.1:1")
    assert outcome.code == 0
    shown = outcome.everything_written()
    assert "hunter2-in-url" not in shown and "also-secret" not in shown
    assert {a["target"] for a in outcome.report["announced"]} == {server.url,
                                                                  "http://127.0.0.1:1"}


def test_an_unset_token_names_the_file_and_line(run_experiment: Runner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN")
    outcome = run_experiment(annotations_yaml("http://127.0.0.1:1"))
    assert outcome.code == 4
    assert re.search(r"exp1\.yaml:\d+: annotations\.grafana\.token refers to "
                     r"\$\{env:GRAFANA_TOKEN\}", outcome.err), outcome.err

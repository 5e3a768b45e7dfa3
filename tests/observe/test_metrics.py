"""The runner's own metrics, end to end: a real run (a paused sleeper process, probe traffic
to a local HTTP server) serves /metrics, a real Prometheus scrapes it, `chaosrunner halt`
stops it, and Debian's Pushgateway holds what it pushed at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerting_fixture import run_pushgateway
from helpers import chaosrunner, free_port, http_server, sleeping_process
from observe_run import Runner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_fixture import PrometheusFactory, prometheus  # noqa: F401  (fixture)

from chaosrunner.cli.main import main
from chaosrunner.testing.experiments import probe_steady_state
from chaosrunner.testing.fakes import World

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: metered
hypothesis: pausing a sleeper is harmless, and the runner's metrics show it
steady_state: {from: steady.yaml, before: 500ms, after: 1s, interval: 250ms}
duration: 120s
faults:
  - {name: freeze, action: process.pause, target: {pid_file: sleeper.pid}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    with sleeping_process(tmp_path / "sleeper.pid"), http_server(tmp_path) as (url, _, _):
        (tmp_path / "steady.yaml").write_text(probe_steady_state(url))
        (tmp_path / "exp.yaml").write_text(EXPERIMENT)
        yield tmp_path


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_prometheus_scrapes_the_run_and_the_pushgateway_keeps_the_end(
        site: Path, prometheus: PrometheusFactory) -> None:  # noqa: F811
    port = free_port()
    with run_pushgateway(site / "pushgateway") as gateway:
        run = chaosrunner("run", "exp.yaml", "--state-dir", "state", "--report-dir", "rep",
                          "--output", "json", "--metrics-port", f"127.0.0.1:{port}",
                          "--pushgateway", gateway.url, cwd=site)
        try:
            prom = prometheus({"chaosrunner": [f"127.0.0.1:{port}"]})
            prom.wait_for('chaosrunner_faults_in_effect{experiment="metered"} == 1', 90)
            prom.wait_for('chaosrunner_sli_value{experiment="metered",slo="probe"} == 1', 30)
            prom.wait_for('chaosrunner_run_in_progress{experiment="metered"} == 1', 30)
            halted = subprocess.run([sys.executable, "-m", "chaosrunner", "halt", "--state-dir",
                                     "state", "--reason", "seen on the dashboard"], cwd=site,
                                    capture_output=True, text=True, timeout=60)
            assert halted.returncode == 0, halted.stderr
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.terminate()
                run.communicate(timeout=60)
        assert run.returncode == 2, err
        pushed = samples(gateway.get("/metrics"))
    group = {("experiment", "metered"), ("job", "chaosrunner"), ("instance", "")}

    def value(name: str, **labels: str) -> float:
        key = frozenset(group | {("experiment", "metered")} | set(labels.items()))
        return pushed[(name, key)]

    assert value("chaosrunner_runs_total", verdict="aborted") == 1
    assert value("chaosrunner_aborts_total", reason="halt") == 1
    assert value("chaosrunner_faults_in_effect") == 0
    assert value("chaosrunner_run_in_progress") == 0
    assert value("chaosrunner_rollback_seconds_count") == 1
    assert value("chaosrunner_abort_reaction_seconds_count") == 1
    # Report times are to the millisecond: resuming a paused process after a halt can take
    # less than that, so a reaction of 0 s is a true reading (CI saw one), not a missing one.
    assert 0 <= value("chaosrunner_abort_reaction_seconds_sum") < 30
    report = json.loads((site / "rep" / "report.json").read_text())
    channels = {a["channel"]: a for a in report["announced"]}
    assert channels["metrics"]["target"] == f"127.0.0.1:{port}"
    assert channels["pushgateway"]["sent"] == 1
    print(f"abort reaction {value('chaosrunner_abort_reaction_seconds_sum'):.3f}s, rollback "
          f"{value('chaosrunner_rollback_seconds_sum'):.3f}s")


@pytest.mark.parametrize("address", ["not-a-port", "127.0.0.1:99999"])
def test_a_bad_metrics_port_is_bad_input(tmp_path: Path, address: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exp.yaml").write_text("")
    code = main(["run", str(tmp_path / "exp.yaml"), "--metrics-port", address])
    assert code == 4
    assert "--metrics-port" in capsys.readouterr().err


def test_the_scheduler_counts_its_children_from_their_reports(tmp_path: Path) -> None:
    """`schedule --metrics-port` counts each game day a child ran, and its experiments,
    from the report files the child wrote."""
    from chaosrunner.observe.metrics import RunnerMetrics

    day = tmp_path / "day"
    for index, (verdict, abort) in enumerate((("passed", None),
                                              ("aborted", {"reason": "halt: stop",
                                                           "at": "2026-01-01T00:00:01Z"}))):
        (day / f"0{index}-exp").mkdir(parents=True)
        (day / f"0{index}-exp" / "report.json").write_text(json.dumps({
            "experiment": f"exp{index}", "verdict": verdict, "abort": abort, "faults": [],
            "phases": [{"name": "rollback", "start": "2026-01-01T00:00:01Z",
                        "end": "2026-01-01T00:00:03Z"}]}))
    metrics = RunnerMetrics()
    metrics.record_gameday("q4", "aborted", day)
    values = samples(generate_latest(metrics.registry).decode())
    assert values[("chaosrunner_gamedays_total",
                   frozenset({("gameday", "q4"), ("verdict", "aborted")}))] == 1
    assert values[("chaosrunner_runs_total",
                   frozenset({("experiment", "exp0"), ("verdict", "passed")}))] == 1
    assert values[("chaosrunner_aborts_total",
                   frozenset({("experiment", "exp1"), ("reason", "halt")}))] == 1
    assert values[("chaosrunner_abort_reaction_seconds_sum",
                   frozenset({("experiment", "exp1")}))] == 2.0


def test_schedule_hands_the_observe_flags_to_each_game_day() -> None:
    from chaosrunner.cli.main import GLOBAL_DEFAULTS, build_parser
    from chaosrunner.cli.schedule import child_flags

    args = build_parser().parse_args(["schedule", "gd.yaml", "--config", "c.yaml",
                                      "--otlp-endpoint", "http://127.0.0.1:4318",
                                      "--pushgateway", "http://127.0.0.1:9091",
                                      "--metrics-port", "9464"])
    for key, default in GLOBAL_DEFAULTS.items():  # as main() fills them in
        setattr(args, key, getattr(args, key, None) or default)
    flags = child_flags(args)
    assert flags[flags.index("--config") + 1] == "c.yaml"
    assert flags[flags.index("--otlp-endpoint") + 1] == "http://127.0.0.1:4318"
    assert flags[flags.index("--pushgateway") + 1] == "http://127.0.0.1:9091"
    assert "--metrics-port" not in flags  # the scheduler serves it, not its children


@pytest.mark.parametrize("flags", [["--otlp-endpoint", "127.0.0.1:4318"],
                                   ["--pushgateway", "pushgateway:9091"]])
def test_an_endpoint_that_is_no_url_is_bad_input(tmp_path: Path, flags: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exp.yaml").write_text("")
    assert main(["run", str(tmp_path / "exp.yaml"), *flags]) == 4
    assert f"{flags[0]} '{flags[1]}': expected an http:// or https:// URL" in capsys.readouterr().err


def test_a_metrics_port_in_use_is_bad_input(run_experiment: Runner, world: World) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        outcome = run_experiment("", "--metrics-port", f"127.0.0.1:{taken.getsockname()[1]}")
    assert outcome.code == 4 and "cannot listen" in outcome.err
    assert world.log == []


def test_a_pushgateway_that_is_down_changes_nothing(run_experiment: Runner) -> None:
    outcome = run_experiment("", "--pushgateway", "http://127.0.0.1:1")
    assert outcome.code == 0
    [pushed] = [a for a in outcome.report["announced"] if a["channel"] == "pushgateway"]
    assert (pushed["sent"], pushed["failed"]) == (0, 1)
    assert "pushing metrics to http://127.0.0.1:1 failed" in outcome.err

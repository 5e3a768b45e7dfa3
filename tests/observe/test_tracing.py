"""OpenTelemetry: a run is one trace, sent over OTLP/HTTP to a local receiver that decodes
the protobuf (opentelemetry-proto); probe requests carry the run's traceparent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from observe_run import Runner
from observe_servers import capture, otlp

from chaosrunner.cli.main import main
from chaosrunner.engine.backends import Backends
from chaosrunner.testing.fakes import World, fake_drivers
from chaosrunner.testing.html import links


def by_name(spans: list[Any]) -> dict[str, Any]:
    return {span.name: span for span in spans}


def test_a_run_is_one_trace_of_phases_and_driver_calls(run_experiment: Runner) -> None:
    with otlp() as receiver:
        outcome = run_experiment("", "--otlp-endpoint", receiver.url)
    assert outcome.code == 0, outcome.err
    assert receiver.errors == []
    spans = by_name(receiver.spans)
    root = spans["run observed"]
    trace_id = root.trace_id.hex()
    assert {span.trace_id.hex() for span in receiver.spans} == {trace_id}
    assert outcome.report["trace_id"] == trace_id
    assert root.parent_span_id == b""
    phases = [name for name in spans if name.startswith("phase ")]
    assert set(phases) >= {"phase plan", "phase before", "phase faults", "phase after"}
    for name in phases:
        assert spans[name].parent_span_id == root.span_id
    inject = spans["inject lose-api-1 -> api-1"]
    revert = spans["revert lose-api-1 -> api-1"]
    assert inject.parent_span_id == spans["phase faults"].span_id
    assert revert.start_time_unix_nano >= inject.end_time_unix_nano
    attributes = {a.key: a.value.string_value for a in root.attributes}
    assert attributes["chaosrunner.verdict"] == "passed"
    assert attributes["chaosrunner.run_id"] == outcome.report["run_id"]
    html = (outcome.report_dir / "report.html").read_text()
    assert trace_id in html
    markdown = (outcome.report_dir / "report.md").read_text()
    assert "## Announced" in markdown and f"Trace: `{trace_id}`" in markdown
    [announced] = outcome.report["announced"]
    assert announced["channel"] == "otlp" and announced["sent"] == len(receiver.spans)


def test_abort_decisions_are_span_events(run_experiment: Runner, world: World) -> None:
    world.down_value = 0.5
    with otlp() as receiver:
        outcome = run_experiment("""
abort:
  error_budget: {slo: availability, burn_rate: 10, windows: [250ms, 500ms]}
""", "--otlp-endpoint", receiver.url + "/v1/traces")
    assert outcome.code == 2, outcome.err
    spans = by_name(receiver.spans)
    [event] = [e for e in spans["run observed"].events if e.name == "abort decision"]
    reason = {a.key: a.value.string_value for a in event.attributes}["chaosrunner.reason"]
    assert "burn rate" in reason
    assert any(e.name == "abort decision" for e in spans["phase faults"].events)
    assert spans["run observed"].status.code == 2  # STATUS_CODE_ERROR


def test_the_environment_variable_is_enough(run_experiment: Runner,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with otlp() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        outcome = run_experiment()
    assert outcome.code == 0
    assert receiver.spans and outcome.report["trace_id"] == receiver.spans[0].trace_id.hex()


def test_a_collector_that_is_down_changes_nothing(run_experiment: Runner) -> None:
    outcome = run_experiment("", "--otlp-endpoint", "http://127.0.0.1:1")
    assert outcome.code == 0
    [announced] = outcome.report["announced"]
    assert announced["sent"] == 0 and announced["failed"] > 0


PROBED = """
apiVersion: chaosrunner/v1
kind: SteadyState
name: probed
service_level_objectives:
  availability:
    sli: {{http: {{url: "{url}/health", rate: 20/s}}}}
    target: 50%
"""

PROBED_EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: probed
hypothesis: the service's traces join the run's
steady_state: {from: steady.yaml, before: 500ms, after: 500ms, interval: 250ms}
duration: 500ms
blast_radius: {max_targets: 1, max_percent: 50%}
faults:
  - {name: lose-api-1, action: fake.down, target: {prefix: api}, select: {names: [api-1]}}
"""


@pytest.fixture
def fake_driver() -> World:
    return World(["api-1", "api-2"])


def test_probe_requests_carry_the_runs_traceparent(tmp_path: Path, fake_driver: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with otlp() as receiver, capture() as service:
        (tmp_path / "steady.yaml").write_text(PROBED.format(url=service.url))
        (tmp_path / "exp.yaml").write_text(PROBED_EXPERIMENT)
        code = main(["run", str(tmp_path / "exp.yaml"), "--report-dir", str(tmp_path / "r"),
                     "--state-dir", str(tmp_path / "s"), "--no-watchdog", "--output", "json",
                     "--otlp-endpoint", receiver.url],
                    backends=Backends(drivers=fake_drivers(fake_driver)))
    assert code == 0, capsys.readouterr()
    spans = {span.span_id.hex(): span for span in receiver.spans}
    trace_id = next(iter(spans.values())).trace_id.hex()
    parents = [r.headers.get("traceparent", "") for r in service.requests]
    assert len(parents) > 10 and all(p.startswith(f"00-{trace_id}-") for p in parents)
    named = {spans[p.split("-")[2]].name for p in parents}
    assert {"phase before", "phase faults"} <= named


def test_the_report_links_the_trace(run_experiment: Runner, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text('trace_url: "http://127.0.0.1:16686/trace/{trace_id}"\n')
    with otlp() as receiver:
        outcome = run_experiment("", "--otlp-endpoint", receiver.url, "--config", str(config))
    trace_id = outcome.report["trace_id"]
    html = (outcome.report_dir / "report.html").read_text()
    assert (f"http://127.0.0.1:16686/trace/{trace_id}", trace_id) in links(html)

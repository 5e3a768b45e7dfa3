"""Issue 12.14: report.md and report.html show each fault's parameters (as written, with
when and for how long), the blast radius the run enforced and its abort policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_builders import build_report

from chaosrunner.app.run import run_file
from chaosrunner.engine.context import RunOptions
from chaosrunner.report.html import render_html
from chaosrunner.report.markdown import render_markdown
from chaosrunner.report.model import FaultRecord, RunReport
from chaosrunner.report.severity import classify_impact
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_backends
from chaosrunner.testing.html import visible_text


def configured() -> RunReport:
    report = build_report("passed")
    report.faults.append(FaultRecord(
        name="freeze-payments", action="process.pause", targets=["pid 4242: payments-2"],
        injected_at=report.faults[0].injected_at, reverted_at=report.faults[0].reverted_at))
    report.fault_plan = {
        "slow-payments": {"with": {"latency": "500ms", "jitter": "0ms"}, "at": 0.0,
                          "for": None, "select": "all"},
        "freeze-payments": {"with": {}, "at": 10.0, "for": 5.0, "select": {"random": 1}}}
    report.blast_radius = {"max_targets": 1, "max_percent": 0.25, "default": False}
    report.abort_policy = {"error_budget": [{"slo": "checkout_probe", "burn_rate": 14.4,
                                             "windows": [10.0, 30.0]}],
                           "min_budget_remaining": 0.5}
    return report


def html_text(report: RunReport) -> str:
    return visible_text(render_html(report, classify_impact(report)))


def md_text(report: RunReport) -> str:
    return render_markdown(report, classify_impact(report))


def test_fault_parameters_as_written_with_timing() -> None:
    for shown in (md_text(configured()), html_text(configured())):
        assert "latency: 500 ms" in shown and "jitter: 0 ms" in shown
        assert "SIGSTOP" in shown and "for 5 s" in shown and "from 10 s into the fault phase" in shown
        assert "until its end" in shown


def test_blast_radius_and_abort_policy() -> None:
    for shown in (md_text(configured()), html_text(configured())):
        assert "Blast radius" in shown
        assert "at most 1 target" in shown and "at most 25% of a selector's matches" in shown
        assert "Abort policy" in shown
        assert "checkout_probe burn rate above 14.4x over 10 s and 30 s" in shown
        assert "less than 50% of the error budget left" in shown


def test_default_ceiling_and_no_abort_policy_are_said() -> None:
    report = build_report("passed")
    report.blast_radius = {"max_targets": 1, "max_percent": 0.25, "per_fault": 1,
                           "default": True}
    for shown in (md_text(report), html_text(report)):
        assert "default ceiling" in shown and "one instance per fault" in shown
        assert "no abort policy" in shown


def test_report_json_keeps_them() -> None:
    data = configured().to_json()
    assert data["blast_radius"]["max_targets"] == 1
    assert data["abort_policy"]["error_budget"][0]["burn_rate"] == 14.4
    assert data["fault_plan"]["freeze-payments"]["for"] == 5.0


STEADY = fake_steady_state(latency=False)

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: settings
hypothesis: one of four down keeps availability up
steady_state: {from: steady.yaml, before: 500ms, after: 1s, interval: 250ms}
duration: 2s
blast_radius: {max_targets: 1, max_percent: 25%}
faults:
  - name: down
    action: fake.down
    target: {prefix: api}
    select: {names: [api-1]}
    at: 250ms
    for: 1s
success_criteria:
  - availability >= 70%
abort:
  error_budget: {slo: availability, burn_rate: 1000, windows: [1s, 2s]}
"""


def run_settings(tmp_path: Path, steady: str) -> Path:
    """EXPERIMENT over `steady` through the code that runs files, on four fake instances;
    returns the report directory."""
    (tmp_path / "steady.yaml").write_text(steady)
    (tmp_path / "settings.yaml").write_text(EXPERIMENT)
    world = World(["api-1", "api-2", "api-3", "api-4"])
    options = RunOptions(state_dir=tmp_path / "state", report_dir=tmp_path / "out", seed=1)
    run_file(tmp_path / "settings.yaml", options, output="json",
             backends=fake_backends(world))
    return tmp_path / "out"


def test_a_run_reports_what_it_was_told(tmp_path: Path) -> None:
    """Through the code that runs files: the engine fills the plan, radius and policy."""
    out = run_settings(tmp_path, STEADY)
    markdown = (out / "report.md").read_text()
    assert "from 0.25 s into the fault phase, for 1 s; select names: api-1" in markdown
    assert "at most 1 target in all; at most 25% of a selector's matches" in markdown
    assert "availability burn rate above 1000x over 1 s and 2 s" in markdown
    data = json.loads((out / "report.json").read_text())
    assert data["blast_radius"] == {"max_targets": 1, "max_percent": 0.25, "default": False}


def test_incident_severity_from_the_steady_state_file(tmp_path: Path) -> None:
    """The thresholds are configurable in the SteadyState file (`incident_severity:`);
    the run records them, resolved for its environment, in report.json."""
    out = run_settings(tmp_path, STEADY + "incident_severity: {sev2_above: 5%, "
                                          "min_duration: 2s, environments: [staging]}\n")
    data = json.loads((out / "report.json").read_text())
    assert data["severity_policy"] == {"sev1_at": 1.0, "sev2_above": 0.05, "min_seconds": 2.0,
                                       "capped_at": "SEV3", "incident_environment": True}


def test_a_bad_incident_severity_is_exit_4(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.main import main

    path = tmp_path / "steady.yaml"
    path.write_text(STEADY + "incident_severity: {sev2_above: 50%, sev1_at: 20%}\n")
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert "sev2_above must be below sev1_at" in err and "Traceback" not in err


def test_a_long_parameter_is_shortened_in_the_middle() -> None:
    report = configured()
    report.fault_plan["slow-payments"]["with"] = {"body": "x" * 500 + "END"}
    shown = md_text(report)
    assert "END" in shown and "x" * 200 not in shown

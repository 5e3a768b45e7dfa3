"""Files: what loads, and the errors (file:line key.path, exit 4) for what does not."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import spec_files

from chaosrunner.app.load import load_experiment, load_kind
from chaosrunner.cli.main import main
from chaosrunner.errors import SpecError
from chaosrunner.spec.validate import load_steady_state

REPO = Path(__file__).resolve().parents[2]

SEED_SLOS = """
apiVersion: chaosrunner/v1
kind: SteadyState
name: seed
service_level_objectives:
  api_availability:
    sli: "sum(rate(http_requests_total{job='api',code!~'5..'}[1m])) / sum(rate(http_requests_total{job='api'}[1m]))"
    target: 0.999  # 99.9% availability
    window: "30d"
    error_budget_policy: "halt_deployments_at_50_percent_burn"

  api_latency:
    sli: "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{job='api'}[1m])) by (le))"
    target: 0.5  # P99 < 500ms
    window: "30d"
    error_budget_policy: "alert_at_25_percent_burn"
  probe:
    sli: {http: {url: "http://127.0.0.1:1/x", rate: 20/s, timeout: 1s}}
    target: 99%
"""

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: demo
hypothesis: it holds
steady_state: {from: steady.yaml, before: 1s, after: 1s, interval: 250ms}
duration: 10s
faults:
  - name: pause
    action: process.pause
    target: {pid_file: x.pid}
success_criteria:
  - probe >= 99%
  - probe.p99 < 2s
abort:
  error_budget: {slo: probe, burn_rate: 14.4}
"""


def write(tmp_path: Path, experiment: str = EXPERIMENT, steady: str = SEED_SLOS) -> Path:
    return spec_files.write(tmp_path, textwrap.dedent(steady), textwrap.dedent(experiment))


def problems_of(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    return str(info.value)


def test_seed_slo_shape_loads_verbatim(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SEED_SLOS)
    steady = load_steady_state(tmp_path / "s.yaml")
    availability = steady.service_level_objectives["api_availability"]
    assert availability.target == 0.999 and availability.window == 30 * 86400
    assert availability.is_ratio and abs((availability.budget or 0) - 0.001) < 1e-12
    assert availability.error_budget_policy == "halt_deployments_at_50_percent_burn"
    assert steady.service_level_objectives["probe"].sli.http.rate == 20.0  # type: ignore[union-attr]


def test_valid_experiment_loads_with_parsed_criteria(tmp_path: Path) -> None:
    bundle = load_experiment(write(tmp_path))
    criteria = bundle.experiment.success_criteria
    assert (criteria[1].slo, criteria[1].stat, criteria[1].op, criteria[1].value) == \
        ("probe", "p99", "<", 2.0)
    assert bundle.experiment.steady_state.interval == 0.25
    with pytest.raises(Exception):  # noqa: B017 - frozen models refuse mutation
        bundle.experiment.name = "other"  # type: ignore[misc]


def test_unknown_key_has_file_line_and_path(tmp_path: Path) -> None:
    text = EXPERIMENT.replace("    target: {pid_file: x.pid}",
                              "    target: {pid_file: x.pid}\n    wiht: {signal: 9}")
    message = problems_of(write(tmp_path, text))
    assert f"{tmp_path / 'exp.yaml'}:12: faults[0].wiht: unknown key" in message


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("duration: 10s", "duration: ten", "duration: expected a duration"),
    ("interval: 250ms", "interval: 250", "steady_state.interval: expected a duration"),
    ("  - probe >= 99%", "  - probe >= 199%", "ratio must lie between 0 and 1"),
    ("  - probe >= 99%", "  - probe >== 99%", "success_criteria[0]: unexpected '= 99%'"),
    ("  - probe >= 99%", "  - probe is fine", "success_criteria[0]: malformed criterion"),
    ("  - probe >= 99%", "  - nope >= 99%", "names unknown SLO 'nope'"),
    ("  - probe.p99 < 2s", "  - probe.p42 < 2s", "unknown statistic 'p42'"),
    ("action: process.pause", "action: teleport.now", "unknown action 'teleport.now'"),
    ("action: process.pause", "action: process.explode", "unknown action 'process.explode'"),
    ("slo: probe, burn_rate", "slo: nope, burn_rate", "abort.error_budget.slo: unknown SLO"),
    ("hypothesis: it holds\n", "", "hypothesis: required key is missing"),
    ("name: demo", "name: [1, 2]", "name: expected text"),
])
def test_bad_input_is_placed(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = EXPERIMENT.replace(old, new)
    assert text != EXPERIMENT
    message = problems_of(write(tmp_path, text))
    assert expected in message
    assert str(tmp_path / "exp.yaml") in message


def test_unknown_slo_in_steady_state_list(tmp_path: Path) -> None:
    text = EXPERIMENT.replace("interval: 250ms}", "interval: 250ms, slos: [probe, ghost]}")
    message = problems_of(write(tmp_path, text))
    assert "steady_state.slos[1]: unknown SLO 'ghost'" in message


def test_bad_steady_state_reported_through_experiment(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, steady=SEED_SLOS.replace("target: 99%", "target: lots")))
    assert "steady.yaml:" in message and "service_level_objectives.probe.target" in message


def test_yaml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Experiment\nname: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml:\d+: not valid YAML"):
        load_kind(bad)
    with pytest.raises(SpecError, match="no such file"):
        load_kind(tmp_path / "missing.yaml")


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines))
    with pytest.raises(SpecError, match="alias bomb"):
        load_kind(bomb)


def test_validate_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path)
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXPERIMENT.replace("duration: 10s", "duration: forever"))
    assert main(["validate", str(good), str(bad)]) == 4
    err = capsys.readouterr().err
    assert "bad.yaml:7: duration" in err and "Traceback" not in err


def test_shipped_files_validate() -> None:
    files = sorted(str(p) for d in ("experiments", "steady-states", "gamedays")
                   for p in (REPO / d).glob("*.yaml"))
    assert files
    assert main(["validate", *files]) == 0


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert {"SteadyState", "Experiment", "GameDay"} <= set(schemas)
    experiment = schemas["Experiment"]
    assert "faults" in experiment["properties"] and "apiVersion" in experiment["properties"]
    assert experiment.get("additionalProperties") is False


def test_validate_checks_a_gamedays_cron_and_experiments(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path)
    day = tmp_path / "day.yaml"
    day.write_text('apiVersion: chaosrunner/v1\nkind: GameDay\nname: d\nschedule: "0 10 * * TUE"\n'
                   "experiments: [exp.yaml]\n")
    assert main(["validate", str(day)]) == 0
    day.write_text('apiVersion: chaosrunner/v1\nkind: GameDay\nname: d\nschedule: "61 * * * *"\n'
                   "experiments: [exp.yaml, missing.yaml]\n")
    assert main(["validate", str(day)]) == 4
    err = capsys.readouterr().err
    assert "day.yaml:4: schedule" in err and "missing.yaml: no such file" in err


def test_the_design_documents_examples_validate_verbatim(tmp_path: Path) -> None:
    """docs/design.md is the contract: its SteadyState and Experiment examples load as
    written (the experiment's `from:` is pointed at the steady state next to it)."""
    import re

    design = (REPO / "docs" / "design.md").read_text()
    steady, experiment, _gameday = re.findall(r"```yaml\n(.*?)```", design, re.S)
    (tmp_path / "steady-states").mkdir()
    (tmp_path / "steady-states" / "checkout.yaml").write_text(steady)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "payments-latency.yaml").write_text(experiment)
    bundle = load_experiment(tmp_path / "experiments" / "payments-latency.yaml")
    assert [f.action for f in bundle.experiment.faults] == ["toxiproxy.latency", "docker.kill"]
    assert set(bundle.slos) == {"checkout_probe", "api_latency"}
    assert bundle.experiment.abort.budget_limits[0].windows == (60.0, 300.0)
    ratio = bundle.steady_state.service_level_objectives["checkout_ratio"]
    assert ratio.is_ratio and abs(ratio.target - 0.995) < 1e-12

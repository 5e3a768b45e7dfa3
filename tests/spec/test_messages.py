"""Messages (issue 12.11): did-you-mean for keys, actions and SLO names; pydantic's wording
never reaches the user; one error for a Chaos Toolkit wrong provider type; unknown
statistics list the ones that exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO
from spec_files import EXPERIMENT as BASE
from spec_files import STEADY, validate

from chaosrunner.cli.main import main


def problems(tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str = "", new: str = "",
             extra: str = "") -> list[str]:
    assert old in BASE
    code, err = validate(tmp_path, capsys, experiment=BASE.replace(old, new, 1) + extra)
    assert code == 4
    assert "Input should" not in err and "Input tag" not in err and "literal[" not in err
    return [line for line in err.splitlines() if line.strip()]


def invalid(path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Write `text` to `path` and validate it (exit 4): the non-blank lines of stderr."""
    path.write_text(text)
    assert main(["validate", str(path)]) == 4
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


CASES = [
    ("hypothesis:", "hypotesis:", "", "hypotesis: unknown key (did you mean 'hypothesis'?)"),
    ("", "", "blast_radius: {max_target: 3}\n", "(did you mean 'max_targets'?)"),
    ("x.pid}", "x.pid}\n    select: {rnadom: 1}", "", "select.rnadom: unknown key (did you "
     "mean 'random'?)"),
    ("process.pause", "proces.pause", "", "unknown action 'proces.pause' (did you mean "
     "'process.pause'?)"),
    ("process.pause", "process.paus", "", "(did you mean 'process.pause'?)"),
    ("", "", "success_criteria: ['prob >= 99%']\n", "unknown SLO 'prob' (did you mean "
     "'probe'?)"),
    ("", "", "abort: {error_budget: {slo: prob}}\n", "(did you mean 'probe'?)"),
    ("", "", "success_criteria: ['probe.p99.9 < 2s']\n", "unknown statistic 'p99.9'; the "
     "statistics are availability, p50, p90, p95, p99, max, mean"),
    ("x.pid}", "x.pid}\n    select: some", "", "select: expected 'all', {random: ...}, "
     "{percent: ...} or {names: ...}"),
    ("x.pid}", "x.pid}\n    select: {random: 0}", "", "select.random: must be at least 1"),
    ("", "", "tags: tag\n", "tags: expected a list"),
    ("name: demo", "name: de mo", "", "name: may contain only letters, digits"),
]


@pytest.mark.parametrize(("old", "new", "extra", "expected"), CASES)
def test_message(old: str, new: str, extra: str, expected: str, tmp_path: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
    found = problems(tmp_path, capsys, old, new, extra)
    assert len(found) == 1, found
    assert expected in found[0]


def test_a_chaos_toolkit_wrong_provider_type_is_one_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((REPO / "tests/ctk/experiment.json").read_text())
    data["method"][0]["provider"]["type"] = "pythn"
    lines = invalid(tmp_path / "ctk.json", json.dumps(data, indent=2), capsys)
    assert len(lines) == 1, lines
    assert "unknown type 'pythn'; expected one of python, process, http (did you mean " \
        "'python'?)" in lines[0]
    assert "Input tag" not in lines[0]


def test_an_unknown_sli_statistic_lists_those_that_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(STEADY.replace("timeout: 1s}}", "timeout: 1s}, stat: p99.9}"))
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"{path}:6: service_level_objectives.probe.sli.stat: unknown statistic 'p99.9' " \
        "(did you mean 'p99'?); the statistics are availability, p50, p90, p95, p99" in err


CTK_PROBE_STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: s
service_level_objectives:
  probe:
    sli:
      ctk_probe:
        probe: {type: probe, name: up, tolerance: 200, provider: {type: pythn, url: 'http://127.0.0.1:1/'}}
    target: 1
"""


def test_a_ctk_probe_sli_is_checked_by_validate(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    steady = tmp_path / "steady.yaml"
    lines = invalid(steady, CTK_PROBE_STEADY, capsys)
    assert lines == [f"invalid  {steady}:8: service_level_objectives.probe.sli.ctk_probe.probe."
                     "provider: unknown type 'pythn'; expected one of python, process, http "
                     "(did you mean 'python'?)"]
    (tmp_path / "exp.yaml").write_text(BASE)
    assert main(["validate", str(tmp_path / "exp.yaml")]) == 4
    err = capsys.readouterr().err
    assert "exp.yaml:5: steady_state.from: in the steady state it refers to" in err
    assert f"{steady}:8:" in err


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("      http:", "      htp:", "sli.htp: unknown key (did you mean 'http'?)"),
    ("rate: 20/s", "rate: [20]", "expected a positive rate such as 20/s"),
])
def test_a_broken_sli_source_is_one_error(old: str, new: str, expected: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Not also "stat 'p99' is only for http SLIs" for the http source it could not read."""
    lines = invalid(tmp_path / "steady.yaml", STEADY_WITH_STAT.replace(old, new, 1), capsys)
    assert len(lines) == 1 and expected in lines[0], lines


STEADY_WITH_STAT = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: s
service_level_objectives:
  probe:
    sli:
      http:
        url: "http://127.0.0.1:1/x"
        rate: 20/s
      stat: p99
    target: 2s
    op: "<"
"""


def test_a_misspelt_choice_gets_did_you_mean(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    day = tmp_path / "day.yaml"
    day.write_text("apiVersion: chaosrunner/v1\nkind: GameDay\nname: d\n"
                   "experiments: [x.yaml]\nstop_on: allways\n")
    assert main(["validate", str(day)]) == 4
    err = capsys.readouterr().err
    assert "stop_on: must be 'failure', 'abort' or 'never'" in err
    ctk = tmp_path / "ctk.json"
    ctk.write_text(json.dumps({"title": "t", "description": "d", "method": [
        {"type": "acton", "name": "a", "provider": {"type": "process", "path": "true"}}]}))
    assert main(["validate", str(ctk)]) == 4
    err = capsys.readouterr().err
    assert "must be 'probe' or 'action' (did you mean 'action'?)" in err

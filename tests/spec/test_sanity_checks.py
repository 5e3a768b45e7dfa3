"""Sanity checks in validate (issue 12.8): each is exit 4 with what was probably meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_files import EXPERIMENT, validate
from spec_files import STEADY as PROBE_ONLY

STEADY = PROBE_ONLY + """\
  latency:
    sli: {http: {url: "http://127.0.0.1:1/x"}, stat: p99}
    target: 300ms
    op: "<"
"""


def test_the_base_files_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, capsys, steady=STEADY) == (0, "")


STEADY_CASES = [
    ("target: 99%", "target: 99", "steady.yaml:7:", "did you mean 99%?"),
    ("target: 99%", "target: 101%", "steady.yaml:7:", "between 0 and 1"),
    ("target: 99%", "target: 150", "steady.yaml:7:", "between 0 and 1"),
    ("target: 300ms", "target: 300", "steady.yaml:10:", "write 300ms or 300s"),
    ("target: 300ms", "target: '0.3'", "steady.yaml:10:", "needs a unit"),
    ("    op: \"<\"\n", "    op: \"<\"\n    objective: 99\n", "steady.yaml:12:",
     "did you mean 99%?"),
]


@pytest.mark.parametrize(("old", "new", "where", "expected"), STEADY_CASES)
def test_steady_state_sanity(old: str, new: str, where: str, expected: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, err = validate(tmp_path, capsys, steady=STEADY.replace(old, new, 1))
    assert code == 4 and where in err and expected in err, err


EXPERIMENT_CASES = [
    ("success_criteria: ['latency < 300']\n", "write 300ms or 300s"),
    ("success_criteria: ['probe.p99 < 300']\n", "a latency needs a unit"),
    ("success_criteria: ['probe.p99 < 99%']\n", "p99 is a latency; compare it with a duration"),
    ("success_criteria: ['probe >= 2s']\n", "availability is a ratio"),
]


@pytest.mark.parametrize(("extra", "expected"), EXPERIMENT_CASES)
def test_criterion_sanity(extra: str, expected: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, err = validate(tmp_path, capsys, steady=STEADY, experiment=EXPERIMENT + extra)
    assert code == 4 and "exp.yaml:11:" in err and expected in err, err


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("interval: 250ms", "interval: 5s", "interval (5s) is longer than before (2s)"),
    ("before: 2s, after: 2s, interval: 250ms", "before: 10s, after: 2s, interval: 3s",
     "interval (3s) is longer than after (2s)"),
    ("duration: 10s", "duration: -10s", "must be positive"),
])
def test_experiment_timing_sanity(old: str, new: str, expected: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, err = validate(tmp_path, capsys, steady=STEADY,
                         experiment=EXPERIMENT.replace(old, new, 1))
    assert code == 4 and expected in err and ("exp.yaml:5:" in err or "exp.yaml:6:" in err), err


def test_a_fault_past_the_end_of_the_fault_phase(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, err = validate(tmp_path, capsys, steady=STEADY,
                         experiment=EXPERIMENT + "    at: 8s\n    for: 5s\n")
    assert code == 4 and "exp.yaml:12:" in err and "at + for ends after" in err, err


def test_bracketed_unknown_key_is_placed(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, err = validate(tmp_path, capsys, steady=STEADY, experiment=EXPERIMENT + "hypot[[x]]: 1\n")
    assert code == 4 and "exp.yaml:11: hypot[[x]]: unknown key" in err, err

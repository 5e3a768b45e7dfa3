"""errors.Verdict: the one type of a verdict, with everything a verdict implies."""

from __future__ import annotations

import json

import pytest

from chaosrunner.errors import Verdict
from chaosrunner.gameday.schedule import worst_exit_code


def test_each_verdict_has_its_own_exit_code_and_rank() -> None:
    assert len({v.exit_code for v in Verdict}) == len(Verdict)
    assert len({v.rank for v in Verdict}) == len(Verdict)
    assert all(v.description for v in Verdict)


def test_the_documented_exit_codes() -> None:
    codes = {v.value: v.exit_code for v in Verdict}
    assert codes == {"passed": 0, "failed": 1, "aborted": 2, "not_started": 3, "invalid": 4,
                     "rollback_incomplete": 5, "interrupted": 130}
    assert Verdict.INTERRUPTED.exit_code_for("SIGTERM") == 143
    assert Verdict.INTERRUPTED.exit_code_for("SIGINT") == 130
    assert Verdict.FAILED.exit_code_for("SIGTERM") == 1


@pytest.mark.parametrize("verdict", list(Verdict))
def test_an_exit_code_reads_back_as_its_verdict(verdict: Verdict) -> None:
    assert Verdict.from_exit_code(verdict.exit_code) is verdict
    assert Verdict(verdict.value) is verdict


def test_sigterm_exit_reads_as_interrupted_and_unknown_codes_as_none() -> None:
    assert Verdict.from_exit_code(143) is Verdict.INTERRUPTED
    assert Verdict.from_exit_code(77) is None


def test_ranking_worst_first() -> None:
    assert Verdict.ranking() == ("rollback_incomplete > interrupted > invalid > aborted > "
                                 "failed > not_started > passed")
    assert Verdict.worst([Verdict.PASSED, Verdict.ABORTED, Verdict.FAILED]) is Verdict.ABORTED
    assert Verdict.worst([]) is None


def test_the_scheduler_ranks_exit_codes_by_the_same_ranking() -> None:
    assert worst_exit_code([0, 3, 1, None]) == 1
    assert worst_exit_code([2, 143]) == 143
    assert worst_exit_code([130, 5]) == 5
    assert worst_exit_code([]) == 0


def test_postmortem_is_due_after_failed_aborted_and_rollback_incomplete() -> None:
    due = {v for v in Verdict if v.postmortem_due}
    assert due == {Verdict.FAILED, Verdict.ABORTED, Verdict.ROLLBACK_INCOMPLETE}


def test_a_verdict_prints_and_serialises_as_its_value() -> None:
    assert json.dumps({"verdict": Verdict.ROLLBACK_INCOMPLETE}) == \
        '{"verdict": "rollback_incomplete"}'
    assert f"{Verdict.PASSED}" == "passed"

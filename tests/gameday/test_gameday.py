"""Game days on fakes: order, stop_on, the budget gate, the verdict rule, reports, history."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from gameday_support import ABORT, FAIL, PASS, FastRunner  # type: ignore[import-not-found]

from chaosrunner.app.load import load_gameday
from chaosrunner.engine.context import RunOptions
from chaosrunner.errors import SpecError, Verdict
from chaosrunner.gameday.report import ExperimentOutcome, GameDayReport
from chaosrunner.gameday.run import StopRequest, finish, run_gameday
from chaosrunner.history import query_gamedays, query_runs
from chaosrunner.report.model import RunReport
from chaosrunner.testing.fakes import World, fake_drivers


def run_day(path: Path, tmp_path: Path, runner: FastRunner, stop: StopRequest | None = None
            ) -> GameDayReport:
    options = RunOptions(state_dir=tmp_path / "state")
    loaded = load_gameday(path, drivers=fake_drivers(runner.world))
    return run_gameday(loaded, options, tmp_path / "report", run_experiment=runner,
                       stop=stop)


def verdicts(report: GameDayReport) -> list[str]:
    return [o.shown_verdict for o in report.experiments]


def test_all_pass_runs_in_order_with_a_report_dir_each(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    report = run_day(write_gameday([("first", PASS), ("second", PASS)]), tmp_path, fast_runner)
    assert (report.verdict, report.exit_code, report.reason) == ("passed", 0, None)
    assert [o.experiment for o in report.experiments] == ["first", "second"]
    assert [c.report_dir for c in fast_runner.calls] == [
        tmp_path / "report" / "01-first", tmp_path / "report" / "02-second"]
    for outcome in report.experiments:
        assert (tmp_path / "report" / outcome.link / "report.html").exists()  # type: ignore[operator]
        assert outcome.criteria_passed == outcome.criteria_total == 1
    assert world.down == set()
    data = json.loads((tmp_path / "report" / "gameday.json").read_text())
    assert data["verdict"] == "passed" and len(data["experiments"]) == 2
    html = (tmp_path / "report" / "gameday.html").read_text()
    assert 'href="01-first/report.html"' in html and 'href="02-second/report.html"' in html
    assert "[first](01-first/report.md)" in (tmp_path / "report" / "gameday.md").read_text()


def test_history_tags_the_runs_with_the_game_day(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    report = run_day(write_gameday([("first", PASS), ("second", FAIL)], stop_on="never"),
                     tmp_path, fast_runner)
    runs = query_runs(tmp_path / "state")
    assert sorted(r.experiment for r in runs) == ["first", "second"]
    assert {r.gameday for r in runs} == {"day"}
    assert {r.gameday_run_id for r in runs} == {report.run_id}
    days = query_gamedays(tmp_path / "state", name="day")
    assert [(d.run_id, d.verdict, d.exit_code) for d in days] == [(report.run_id, "failed", 1)]


@pytest.mark.parametrize(("stop_on", "plan", "expected", "verdict", "code"), [
    ("failure", [FAIL, PASS], ["failed", "skipped"], "failed", 1),
    ("failure", [PASS, ABORT, PASS], ["passed", "aborted", "skipped"], "aborted", 2),
    ("never", [FAIL, ABORT, PASS], ["failed", "aborted", "passed"], "aborted", 2),
    ("abort", [FAIL, PASS], ["failed", "passed"], "failed", 1),
    ("abort", [FAIL, ABORT, PASS], ["failed", "aborted", "skipped"], "aborted", 2),
])
def test_stop_on(world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
                 tmp_path: Path, stop_on: str, plan: list[dict[str, object]],
                 expected: list[str], verdict: str, code: int) -> None:
    path = write_gameday([(f"e{i}", knobs) for i, knobs in enumerate(plan)], stop_on=stop_on)
    report = run_day(path, tmp_path, fast_runner)
    assert verdicts(report) == expected
    assert (report.verdict, report.exit_code) == (verdict, code)
    assert len(fast_runner.calls) == len([v for v in expected if v != "skipped"])
    if "skipped" in expected:
        assert f"stop_on: {stop_on}" in (report.reason or "")
        assert not (tmp_path / "report" / f"{len(plan):02d}-e{len(plan) - 1}").exists()
    assert world.down == set()


def test_budget_spent_by_an_earlier_experiment_refuses_the_next(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    world.budget_remaining = 0.6

    def spend(report: RunReport) -> None:
        world.budget_remaining -= 0.25

    fast_runner.after_each = spend
    path = write_gameday([("first", PASS), ("second", PASS), ("third", PASS)], stop_on="never",
                         extra="min_budget_remaining: 50%\n")
    report = run_day(path, tmp_path, fast_runner)
    assert [c.min_budget_remaining for c in fast_runner.calls] == [0.5, 0.5, 0.5]
    assert verdicts(report) == ["passed", "not_started", "not_started"]
    assert (report.verdict, report.exit_code) == ("not_started", 3)
    second = report.experiments[1]
    assert "35.0%" in (second.reason or "") and "50.0%" in (second.reason or "")
    assert second.budget["availability"]["remaining_before"] == pytest.approx(0.35)
    assert report.notes == []  # the gate could be applied: the source knew the budget
    assert [kind for kind, _ in world.log] == ["inject", "revert"]  # only the first injected


def test_refused_experiment_stops_a_stop_on_failure_day(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    world.budget_remaining = 0.2
    path = write_gameday([("first", PASS), ("second", PASS)],
                         extra="min_budget_remaining: 25%\n")
    report = run_day(path, tmp_path, fast_runner)
    assert verdicts(report) == ["not_started", "skipped"]
    assert report.exit_code == 3 and world.log == []


def test_gate_that_cannot_be_applied_is_noted(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    path = write_gameday([("first", PASS)], extra="min_budget_remaining: 50%\n")
    report = run_day(path, tmp_path, fast_runner)
    assert report.verdict == "passed"
    assert len(report.notes) == 1 and "not applied" in report.notes[0]
    assert "not applied" in (tmp_path / "report" / "gameday.html").read_text()


def test_a_bad_experiment_file_is_invalid_before_anything_runs(
        world: World, write_gameday: Callable[..., Path], tmp_path: Path) -> None:
    path = write_gameday([("first", PASS), ("second", PASS)])
    (tmp_path / "experiments" / "second.yaml").write_text(
        (tmp_path / "experiments" / "second.yaml").read_text().replace("duration:", "duratoin:"))
    with pytest.raises(SpecError) as info:
        load_gameday(path, drivers=fake_drivers(world))
    first = info.value.problems[0]
    assert first.startswith(f"{path}:") and "experiments[1]" in first and "second.yaml" in first
    assert any("duratoin" in p for p in info.value.problems)
    assert world.log == []


def test_missing_experiment_file_and_bad_cron_are_placed(
        world: World, write_gameday: Callable[..., Path], tmp_path: Path) -> None:
    path = write_gameday([("first", PASS)], extra='schedule: "every tuesday"\n')
    path.write_text(path.read_text().replace("experiments/first.yaml", "nope.yaml"))
    with pytest.raises(SpecError) as info:
        load_gameday(path, drivers=fake_drivers(world))
    problems = info.value.problems
    assert any("schedule" in p and "not a cron expression" in p for p in problems)
    assert any("experiments[0]" in p and "nope.yaml" in p for p in problems)


def test_wrong_kind_is_refused(world: World, write_gameday: Callable[..., Path],
                               tmp_path: Path) -> None:
    write_gameday([("first", PASS)])
    with pytest.raises(SpecError, match="expected kind GameDay"):
        load_gameday(tmp_path / "experiments" / "first.yaml", drivers=fake_drivers(world))


def test_signal_between_experiments_stops_the_day(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    stop = StopRequest()

    def late_sigterm(report: RunReport) -> None:
        stop.starting = False  # as after the engine gave the signals back
        os.kill(os.getpid(), signal.SIGTERM)

    fast_runner.after_each = late_sigterm
    before = signal.getsignal(signal.SIGTERM)
    report = run_day(write_gameday([("first", PASS), ("second", PASS)]), tmp_path,
                     fast_runner, stop=stop)
    assert verdicts(report) == ["passed", "skipped"]
    assert (report.verdict, report.exit_code) == ("interrupted", 143)
    assert "stopped by SIGTERM" in (report.reason or "")
    assert signal.getsignal(signal.SIGTERM) is before  # handlers given back


def test_signal_while_an_experiment_writes_its_reports_stops_the_day(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    from chaosrunner.engine.signals import SIGNALS

    def sigterm_in_reports(report: RunReport) -> None:
        SIGNALS.arm()  # run_file's handler is the one in place while reports are written
        os.kill(os.getpid(), signal.SIGTERM)

    fast_runner.after_each = sigterm_in_reports
    report = run_day(write_gameday([("first", PASS), ("second", PASS)]), tmp_path,
                     fast_runner)
    assert verdicts(report) == ["passed", "skipped"]
    assert (report.verdict, report.exit_code) == ("interrupted", 143)


def test_signal_while_an_experiment_starts_injects_nothing(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    calls: list[Path] = []

    def starting_runner(path: Path, options: RunOptions, output: str | None) -> RunReport:
        calls.append(path)
        os.kill(os.getpid(), signal.SIGINT)  # lands before the engine took the signals
        return fast_runner(path, options, output)

    path = write_gameday([("first", PASS), ("second", PASS)])
    report = run_gameday(load_gameday(path, drivers=fake_drivers(world)), RunOptions(state_dir=tmp_path / "state"),
                         tmp_path / "report", run_experiment=starting_runner)
    assert len(calls) == 1 and world.log == []
    assert verdicts(report) == ["skipped", "skipped"]
    assert (report.verdict, report.exit_code) == ("interrupted", 130)


def outcome(verdict: str, code: int) -> ExperimentOutcome:
    return ExperimentOutcome(1, "x.yaml", "x", status="ran", verdict=Verdict(verdict),
                             exit_code=code)


@pytest.mark.parametrize(("results", "verdict", "code"), [
    ([("passed", 0), ("passed", 0)], "passed", 0),
    ([("not_started", 3), ("passed", 0)], "not_started", 3),
    ([("failed", 1), ("not_started", 3)], "failed", 1),
    ([("failed", 1), ("aborted", 2)], "aborted", 2),
    ([("aborted", 2), ("interrupted", 143)], "interrupted", 143),
    ([("interrupted", 130), ("rollback_incomplete", 5)], "rollback_incomplete", 5),
])
def test_overall_verdict_is_the_worst(results: list[tuple[str, int]], verdict: str,
                                      code: int) -> None:
    report = GameDayReport(
        name="d", run_id="d-1", verdict=Verdict.PASSED, exit_code=0,
        started_at="2026-11-24T10:00:00.000Z", ended_at=None, duration_seconds=None,
        reason=None, source="d.yaml", description=None, schedule=None, stop_on="never",
        min_budget_remaining=None, report_dir="r", trigger="cli",
        experiments=[outcome(v, c) for v, c in results])
    finish(report, None)
    assert (report.verdict, report.exit_code) == (verdict, code)


def test_game_day_html_is_self_contained_and_escaped(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    path = write_gameday([("first", FAIL)],
                         extra="description: '<script>alert(1)</script> & <img src=x>'\n")
    run_day(path, tmp_path, fast_runner)
    html = (tmp_path / "report" / "gameday.html").read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x&gt;" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert "default-src 'none'" in html
    md = (tmp_path / "report" / "gameday.md").read_text()
    assert "\\<script>" in md  # GitHub does not read it as HTML


def test_a_halt_ends_the_whole_day_even_with_stop_on_never(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    from chaosrunner.engine.halt import StateDirHalt

    fast_runner.after_each = lambda report: StateDirHalt(tmp_path / "state").set("incident")
    report = run_day(write_gameday([("first", PASS), ("second", PASS), ("third", PASS)],
                                   stop_on="never"), tmp_path, fast_runner)
    assert verdicts(report) == ["passed", "skipped", "skipped"]
    assert len(fast_runner.calls) == 1
    assert report.halted is not None and "incident" in report.halted
    assert "halted: incident" in (report.reason or "") and "2 experiment(s) not run" in (
        report.reason or "")
    data = json.loads((tmp_path / "report" / "gameday.json").read_text())
    assert "incident" in data["halted"]
    assert "halted" in (tmp_path / "report" / "gameday.md").read_text()


def test_a_halt_set_before_the_day_runs_nothing(
        world: World, write_gameday: Callable[..., Path], fast_runner: FastRunner,
        tmp_path: Path) -> None:
    from chaosrunner.engine.halt import StateDirHalt

    StateDirHalt(tmp_path / "state").set("freeze")
    report = run_day(write_gameday([("first", PASS)]), tmp_path, fast_runner)
    assert fast_runner.calls == []
    assert (report.verdict, report.exit_code) == ("not_started", 3)
    assert "halted: freeze" in (report.reason or "")

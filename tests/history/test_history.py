"""The run history: SQLite in the state dir, written after each run, read by `runs`."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaosrunner.cli.main import main
from chaosrunner.cli.runs import parse_since
from chaosrunner.errors import InvalidInput, StateError, Verdict
from chaosrunner.history import (
    GameDayRow,
    database_path,
    last_gameday_start,
    query_runs,
    record_gameday,
    record_run,
    tag_gameday,
)
from chaosrunner.report.model import AbortRecord, BudgetRecord, RunReport

NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report(name: str, started: datetime, verdict: str = "passed", code: int = 0,
           seconds: float = 42.5, abort: str | None = None) -> RunReport:
    return RunReport(
        verdict=Verdict(verdict), exit_code=code, experiment=name,
        run_id=f"{name}-{started:%Y%m%dT%H%M%S}", started_at=stamp(started),
        ended_at=stamp(started + timedelta(seconds=seconds)), environment="staging",
        reason=abort, report_dir=f"reports/{name}",
        abort=AbortRecord(reason=abort, at=stamp(started)) if abort else None,
        budget={"a": BudgetRecord("a", 0.01), "b": BudgetRecord("b", 0.04),
                "c": BudgetRecord("c", None)})


def test_a_recorded_run_reads_back_with_its_figures(tmp_path: Path) -> None:
    row = record_run(tmp_path, report("latency", NOW, "aborted", 2, abort="burn rate 20x"))
    assert row is not None
    assert database_path(tmp_path).exists()
    [read] = query_runs(tmp_path)
    assert read == row
    assert (read.verdict, read.exit_code, read.duration_seconds) == ("aborted", 2, 42.5)
    assert read.budget_consumed == pytest.approx(0.04)  # the largest over the SLOs
    assert read.abort_reason == "burn rate 20x" and read.report_dir == "reports/latency"
    assert read.gameday is None


def test_filters_and_newest_first(tmp_path: Path) -> None:
    record_run(tmp_path, report("latency", NOW - timedelta(days=10)))
    record_run(tmp_path, report("latency", NOW - timedelta(days=1)))
    record_run(tmp_path, report("kill", NOW - timedelta(hours=1)))
    assert [r.experiment for r in query_runs(tmp_path)] == ["kill", "latency", "latency"]
    week = query_runs(tmp_path, since=NOW - timedelta(days=7))
    assert [r.experiment for r in week] == ["kill", "latency"]
    assert len(query_runs(tmp_path, experiment="latency")) == 2
    assert len(query_runs(tmp_path, experiment="latency", since=NOW - timedelta(days=7))) == 1
    assert len(query_runs(tmp_path, limit=1)) == 1


def test_game_day_tag_and_last_start(tmp_path: Path) -> None:
    first = report("latency", NOW - timedelta(minutes=5))
    record_run(tmp_path, first)
    record_run(tmp_path, report("kill", NOW))
    tag_gameday(tmp_path, first.run_id, "q4", "q4-1")
    assert [r.experiment for r in query_runs(tmp_path, gameday="q4")] == ["latency"]
    assert last_gameday_start(tmp_path, "q4") is None
    for minutes, verdict in ((60, "passed"), (5, "running")):
        record_gameday(tmp_path, GameDayRow(
            run_id=f"q4-{minutes}", name="q4", verdict=verdict, exit_code=0,
            started_at=stamp(NOW - timedelta(minutes=minutes)), ended_at=None,
            duration_seconds=None, reason=None, report_dir=None, source=None, trigger="cli"))
    assert last_gameday_start(tmp_path, "q4") == NOW - timedelta(minutes=5)


def test_reading_an_absent_history_creates_nothing(tmp_path: Path) -> None:
    assert query_runs(tmp_path / "state") == []
    assert not (tmp_path / "state").exists()


def test_unwritable_history_warns_and_the_run_goes_on(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("a file where the state directory should be")
    assert record_run(not_a_dir, report("latency", NOW)) is None
    err = capsys.readouterr().err
    assert "warning" in err and "not kept in the history" in err and str(not_a_dir) in err


def test_corrupt_database_is_a_clear_state_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    database_path(tmp_path).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="unusable"):
        query_runs(tmp_path)
    assert record_run(tmp_path, report("latency", NOW)) is None
    assert "unusable" in capsys.readouterr().err


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    record_run(tmp_path, report("latency", NOW))
    connection = sqlite3.connect(database_path(tmp_path))
    connection.execute("PRAGMA user_version = 99")
    connection.commit()
    connection.close()
    with pytest.raises(StateError, match="newer chaosrunner"):
        query_runs(tmp_path)


def test_recording_the_same_run_twice_keeps_one_row(tmp_path: Path) -> None:
    run = report("latency", NOW)
    record_run(tmp_path, run)
    run.verdict = "failed"
    record_run(tmp_path, run)
    assert [r.verdict for r in query_runs(tmp_path)] == ["failed"]


def test_parse_since() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+01:00", now) == datetime(2026, 11, 1, 9,
                                                                     tzinfo=UTC)
    with pytest.raises(InvalidInput, match="--since 'last week'"):
        parse_since("last week", now)


def test_runs_command_json_table_and_filters(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path)
    record_run(tmp_path, report("latency", NOW - timedelta(days=10)))
    record_run(tmp_path, report("kill", NOW, "aborted", 2, abort="burn [red]x[/red] <b>")
               )
    assert main(["runs", "--state-dir", state, "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["experiment"] for r in data] == ["kill", "latency"]
    assert {"run_id", "verdict", "exit_code", "started_at", "duration_seconds",
            "budget_consumed", "abort_reason", "report_dir", "gameday"} <= set(data[0])
    assert main(["runs", "--state-dir", state, "--since", "7d", "--output", "json"]) == 0
    assert [r["experiment"] for r in json.loads(capsys.readouterr().out)] == ["kill"]
    assert main(["runs", "--state-dir", state, "--experiment", "latency",
                 "--output", "json"]) == 0
    assert [r["experiment"] for r in json.loads(capsys.readouterr().out)] == ["latency"]
    assert main(["runs", "--state-dir", state]) == 0
    table = capsys.readouterr().out
    assert "kill" in table and "latency" in table and "aborted" in table
    assert "burn [red]x[/red] <b>" in table  # user text is not read as rich markup
    assert main(["runs", "--state-dir", state, "--since", "soon"]) == 4
    assert main(["runs", "--state-dir", str(tmp_path / "empty")]) == 0
    assert "no runs recorded" in capsys.readouterr().out

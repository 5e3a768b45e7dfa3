"""The history of runs and game days: an embedded SQLite database in the state directory.

`chaosrunner run` and `chaosrunner gameday` record every run they finish here
(`<state_dir>/history.sqlite`); `chaosrunner runs` reads it, and `chaosrunner schedule
--once` asks it when a game day last ran.

    record_run(Path(".chaosrunner"), report)                  # after the reports are written
    query_runs(Path(".chaosrunner"), since=week_ago, experiment="network-latency")

Recording is best effort: a run that happened is never turned into an error because its
history row could not be written (a read-only state directory, a locked database); a
warning says so on stderr and the reports on disk stay the record of truth.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosrunner.errors import StateError, Verdict
from chaosrunner.report.model import RunReport
from chaosrunner.secrets import redact_data
from chaosrunner.timestamps import iso, parse_time, seconds_between

DATABASE = "history.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 30.0  # seconds: two runners finishing at once wait for each other

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    verdict TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    started_ts REAL NOT NULL,
    ended_at TEXT,
    duration_seconds REAL,
    budget_consumed REAL,
    abort_reason TEXT,
    reason TEXT,
    environment TEXT,
    report_dir TEXT,
    source TEXT,
    gameday TEXT,
    gameday_run_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_ts);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment, started_ts);
CREATE TABLE IF NOT EXISTS gamedays (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    verdict TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    started_ts REAL NOT NULL,
    ended_at TEXT,
    duration_seconds REAL,
    reason TEXT,
    report_dir TEXT,
    source TEXT,
    trigger TEXT
);
CREATE INDEX IF NOT EXISTS gamedays_name ON gamedays (name, started_ts);
"""


@dataclass(frozen=True)
class RunRow:
    """One experiment run as `chaosrunner runs` shows it."""

    run_id: str
    experiment: str
    verdict: Verdict
    exit_code: int
    started_at: str
    ended_at: str | None
    duration_seconds: float | None
    budget_consumed: float | None  # the largest share of an SLO's budget this run spent
    abort_reason: str | None
    reason: str | None
    environment: str | None
    report_dir: str | None
    source: str | None
    gameday: str | None
    gameday_run_id: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GameDayRow:
    """One game day run."""

    run_id: str
    name: str
    verdict: str  # a Verdict's value, or RUNNING
    exit_code: int
    started_at: str
    ended_at: str | None
    duration_seconds: float | None
    reason: str | None
    report_dir: str | None
    source: str | None
    trigger: str | None  # "cli" or "schedule"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


RUNNING = "running"  # the verdict column of a game day that has not ended yet


def database_path(state_dir: Path) -> Path:
    return Path(state_dir) / DATABASE


@contextlib.contextmanager
def connect(state_dir: Path, create: bool = True) -> Iterator[sqlite3.Connection]:
    """An open connection with the schema in place; committed and closed on exit.

    Raises StateError when the database cannot be opened or is not ours.
    """
    path = database_path(state_dir)
    try:
        if create:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as Ledger.ensure
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"cannot open the run history {path}: {exc}; check that the state "
                         "directory (--state-dir) is writable") from exc
    try:
        connection.row_factory = sqlite3.Row
        _migrate(connection, path)
        with connection:  # one transaction, committed on success
            yield connection
    except sqlite3.DatabaseError as exc:
        raise StateError(f"the run history {path} is unusable: {exc}; move it away to start "
                         "a new history (the reports on disk are not affected)") from exc
    finally:
        connection.close()


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StateError(f"the run history {path} was written by a newer chaosrunner (schema "
                         f"{version}, this one knows {SCHEMA_VERSION}); upgrade chaosrunner")
    if version < SCHEMA_VERSION:
        connection.executescript(_SCHEMA)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def run_row(report: RunReport) -> RunRow:
    """The history row of a finished run."""
    consumed = [b.consumed for b in report.budget.values() if b.consumed is not None]
    return RunRow(
        run_id=report.run_id, experiment=report.experiment, verdict=report.verdict,
        exit_code=report.exit_code, started_at=report.started_at, ended_at=report.ended_at,
        duration_seconds=seconds_between(report.started_at, report.ended_at),
        budget_consumed=max(consumed) if consumed else None,
        abort_reason=report.abort.reason if report.abort is not None else None,
        reason=report.reason, environment=report.environment, report_dir=report.report_dir,
        source=report.source, gameday=None, gameday_run_id=None)


def record_run(state_dir: Path, report: RunReport) -> RunRow | None:
    """Keep a finished run in the history; returns its row, or None when it could not be
    written (with a warning on stderr: the run itself must not fail over its history).
    A game day tags its runs afterwards (`tag_gameday`)."""
    row = run_row(report)
    return row if _keep_run(state_dir, row) else None


def record_lost_run(state_dir: Path, run_id: str, experiment: str, started_at: str,
                    verdict: Verdict, exit_code: int, reason: str) -> None:
    """Keep a run whose runner died (the watchdog's record of it); best effort."""
    ended = iso(datetime.now(UTC))
    row = RunRow(run_id=run_id, experiment=experiment, verdict=verdict, exit_code=exit_code,
                 started_at=started_at, ended_at=ended,
                 duration_seconds=seconds_between(started_at, ended), budget_consumed=None,
                 abort_reason=None, reason=reason, environment=None, report_dir=None,
                 source=None, gameday=None, gameday_run_id=None)
    _keep_run(state_dir, row)


def _keep_run(state_dir: Path, row: RunRow) -> bool:
    """Insert (or replace) a run's row; False, with a warning, when it cannot be written."""
    try:
        with connect(state_dir) as db:
            _insert(db, "runs", {**asdict(row), "started_ts": timestamp(row.started_at)})
    except StateError as exc:
        _warn(f"run {row.run_id} not kept in the history: {exc}")
        return False
    return True


def record_recovered(state_dir: Path, run_id: str, experiment: str, started_at: str,
                     summary: str, failed: bool, killed_exit: int) -> None:
    """What `recover` did for a run whose runner died (best effort). Added to the run's
    row when it has one (the watchdog's, or the run's own when its done records were
    lost); otherwise the run gets a row of its own -- its runner and watchdog died
    together (a container killed as a whole) and nobody recorded it."""
    try:
        with connect(state_dir) as db:
            found = db.execute("SELECT reason FROM runs WHERE run_id = ?",
                               (run_id,)).fetchone()
            if found is not None:
                reason = "; ".join(r for r in (found["reason"], summary) if r)
                db.execute("UPDATE runs SET reason = ? WHERE run_id = ?", (reason, run_id))
                if failed:
                    verdict = Verdict.ROLLBACK_INCOMPLETE
                    db.execute("UPDATE runs SET verdict = ?, exit_code = ? WHERE run_id = ?",
                               (verdict.value, verdict.exit_code, run_id))
                return
    except StateError as exc:
        _warn(f"what recover did for run {run_id} is not kept in the history: {exc}")
        return
    verdict = Verdict.ROLLBACK_INCOMPLETE if failed else Verdict.INTERRUPTED
    record_lost_run(state_dir, run_id, experiment, started_at, verdict,
                    verdict.exit_code if failed else killed_exit, summary)


def tag_gameday(state_dir: Path, run_id: str, gameday: str, gameday_run_id: str) -> None:
    """Mark an experiment run (already recorded by `run_file`) as part of a game day."""
    try:
        with connect(state_dir) as db:
            db.execute("UPDATE runs SET gameday = ?, gameday_run_id = ? WHERE run_id = ?",
                       (gameday, gameday_run_id, run_id))
    except StateError as exc:
        _warn(f"run {run_id} not tagged with game day {gameday}: {exc}")


def record_gameday(state_dir: Path, row: GameDayRow) -> None:
    """Keep a finished game day in the history (best effort, like `record_run`)."""
    try:
        with connect(state_dir) as db:
            _insert(db, "gamedays", {**asdict(row), "started_ts": timestamp(row.started_at)})
    except StateError as exc:
        _warn(f"game day {row.run_id} not kept in the history: {exc}")


def _insert(db: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    # A re-recorded run (same id) replaces its row rather than failing.
    db.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})",
               tuple(redact_data(value) for value in values.values()))  # no secret is kept


def query_runs(state_dir: Path, since: datetime | None = None, experiment: str | None = None,
               gameday: str | None = None, limit: int | None = None) -> list[RunRow]:
    """Runs, newest first, filtered by start time, experiment name and game day name.

    An absent history is an empty one (nothing is created by reading).
    """
    if not database_path(state_dir).exists():
        return []
    clauses, params = _filters(since, experiment, gameday)
    sql = f"SELECT * FROM runs{clauses} ORDER BY started_ts DESC, run_id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connect(state_dir, create=False) as db:
        rows = db.execute(sql, params).fetchall()
    fields = RunRow.__dataclass_fields__
    return [RunRow(**{**{k: row[k] for k in fields}, "verdict": Verdict(row["verdict"])})
            for row in rows]


def _filters(since: datetime | None, experiment: str | None,
             gameday: str | None) -> tuple[str, tuple[Any, ...]]:
    conditions: list[str] = []
    params: list[Any] = []
    if since is not None:
        conditions.append("started_ts >= ?")
        params.append(since.timestamp())
    if experiment is not None:
        conditions.append("experiment = ?")
        params.append(experiment)
    if gameday is not None:
        conditions.append("gameday = ?")
        params.append(gameday)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    return where, tuple(params)


def query_gamedays(state_dir: Path, name: str | None = None,
                   since: datetime | None = None) -> list[GameDayRow]:
    """Game day runs, newest first."""
    if not database_path(state_dir).exists():
        return []
    conditions: list[str] = []
    params: list[Any] = []
    if name is not None:
        conditions.append("name = ?")
        params.append(name)
    if since is not None:
        conditions.append("started_ts >= ?")
        params.append(since.timestamp())
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    with connect(state_dir, create=False) as db:
        rows = db.execute(f"SELECT * FROM gamedays{where} ORDER BY started_ts DESC",
                          tuple(params)).fetchall()
    fields = GameDayRow.__dataclass_fields__
    return [GameDayRow(**{k: row[k] for k in fields}) for row in rows]


def last_gameday_start(state_dir: Path, name: str) -> datetime | None:
    """When the game day `name` last started, as recorded; None if never."""
    rows = query_gamedays(state_dir, name=name)
    return parse_time(rows[0].started_at) if rows else None


def timestamp(text: str) -> float:
    """The POSIX time of a recorded start (the column the filters and the order use)."""
    moment = parse_time(text)
    if moment is None:
        raise StateError(f"{text!r} is not a time; expected ISO-8601 such as "
                         "2026-11-27T10:00:00.123Z")
    return moment.timestamp()


def _warn(message: str) -> None:
    print(f"chaosrunner: warning: {message}", file=sys.stderr)

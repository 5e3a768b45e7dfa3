"""Start game days on their cron `schedule:` (DESIGN.md 2.3), one at a time.

Schedules are cron expressions evaluated in UTC: five fields (minute hour day-of-month
month day-of-week), or six with a trailing seconds field (croniter's extension).

**Due.** A game day is due at `now` when its most recent scheduled time `slot`
(the latest time <= now the expression matches) is no older than the grace period
(`--grace`, default 5m) *and* the history has no start of that game day at or after
`slot`. So `schedule --once` from cron or a Kubernetes CronJob runs a slot that came in the
last five minutes exactly once, even when the job fires twice or a little late; and a
slot whose game day a second scheduler already ran is not run again.

**One at a time.** Before starting a game day the scheduler takes the state directory's
game-day lock (`chaosrunner.gameday.lock`) and hands it to the child; a slot that finds the
lock held is skipped and logged, never queued. Within one scheduler, game days due at the
same time run one after the other.

**Each game day runs in a child process** (`python -m chaosrunner gameday FILE`), in its own
process group: the engine's own SIGINT/SIGTERM handling (abort, roll back, exit 130/143)
then works exactly as in `chaosrunner run`. On SIGTERM/SIGINT the scheduler forwards the
signal to the running child, waits however long its rollback takes (repeating the signal
every few seconds, which the engine answers with "rollback will not be skipped", so that a
signal landing between two experiments is never lost), logs the outcome and exits:
0 when it was idle, else the interrupted game day's exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from chaosrunner.app.load import load_gameday
from chaosrunner.errors import InvalidInput, SpecError, Verdict
from chaosrunner.gameday.lock import LOCK_FD_ENV, acquire_lock, lock_holder, release_lock
from chaosrunner.gameday.run import TRIGGER_ENV
from chaosrunner.history import last_gameday_start
from chaosrunner.timestamps import iso

if TYPE_CHECKING:
    from chaosrunner.drivers.base import DriverRegistry

FORWARD_AGAIN = 5.0  # seconds between repeated signals to a child that is still stopping
MAX_WAIT = 5.0  # the idle loop re-checks the clock at least this often (clock jumps)

Log = Callable[[str], None]
Now = Callable[[], datetime]


@dataclass(frozen=True)
class Entry:
    """A scheduled game day."""

    path: Path
    name: str
    schedule: str


@dataclass
class Outcome:
    """What one start attempt did; `--once --output json` prints these."""

    gameday: str
    slot: str
    status: str  # ran | skipped_locked | skipped_already_ran
    exit_code: int | None = None
    verdict: str | None = None
    report_dir: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_entries(paths: Sequence[Path], variables: dict[str, str] | None = None,
                 drivers: DriverRegistry | None = None) -> list[Entry]:
    """Validate each game-day file (and its experiments, against `drivers`: by default
    the production ones); each must have a `schedule:`."""
    entries: dict[Path, Entry] = {}
    problems: list[str] = []
    for path in paths:
        try:
            loaded = load_gameday(path, variables, drivers)
        except SpecError as exc:
            problems += exc.problems
            continue
        if loaded.gameday.schedule is None:
            problems.append(f"{path}: game day {loaded.gameday.name} has no `schedule:`; add "
                            "one (cron, UTC) or run it with `chaosrunner gameday`")
            continue
        entries[path.resolve()] = Entry(path, loaded.gameday.name, loaded.gameday.schedule)
    if problems:
        raise SpecError(problems)
    names = [e.name for e in entries.values()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"two game-day files share the name {', '.join(repeated)}; the "
                           "history tells game days apart by name, so give each its own")
    return list(entries.values())


def previous_slot(expression: str, now: datetime) -> datetime:
    """The latest time <= now that `expression` matches (UTC)."""
    from croniter import croniter

    # croniter's get_prev is strict; a microsecond later makes `now` itself a candidate.
    slot: datetime = croniter(expression, now + timedelta(microseconds=1)).get_prev(datetime)
    return slot


def next_slot(expression: str, after: datetime) -> datetime:
    """The first time > after that `expression` matches (UTC)."""
    from croniter import croniter

    slot: datetime = croniter(expression, after).get_next(datetime)
    return slot


def is_due(slot: datetime, now: datetime, last_start: datetime | None,
           grace: timedelta) -> bool:
    """The rule in this module's docstring."""
    return timedelta(0) <= now - slot <= grace and (last_start is None or last_start < slot)


def utcnow() -> datetime:
    return datetime.now(UTC)


def stderr_log(message: str) -> None:
    print(f"{iso(utcnow())} chaosrunner schedule: {message}", file=sys.stderr, flush=True)


@dataclass
class Scheduler:
    """Runs due game days as child processes, one at a time, until stopped."""

    entries: list[Entry]
    state_dir: Path
    report_root: Path
    grace: timedelta
    child_flags: list[str] = field(default_factory=list)
    log: Log = stderr_log
    now: Now = utcnow
    stop_signal: str | None = None
    child: subprocess.Popen[bytes] | None = None
    interrupted_code: int | None = None
    # Told each game day's outcome (chaosrunner.observe feeds the scheduler's metrics).
    on_outcome: Callable[[Outcome], None] | None = None
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop_logged: bool = False

    # --- signals -----------------------------------------------------------------------

    def install_signals(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.request_stop(number)

    def request_stop(self, number: int) -> None:
        """Stop after the running game day, which gets the same signal to roll back.

        Runs in a signal handler: no logging here (a print interrupting the main thread's
        print on the same stream raises); `_note_stop` logs from the main flow.
        """
        self.stop_signal = signal.Signals(number).name
        self._wake.set()
        self._forward(number)

    def _note_stop(self) -> None:
        if self.stop_signal is not None and not self._stop_logged:
            self._stop_logged = True
            running = " after the running game day has rolled back" if self.child else ""
            self.log(f"{self.stop_signal}: stopping{running}")

    def _forward(self, number: int) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, number)

    # --- modes -------------------------------------------------------------------------

    def run_once(self) -> tuple[int, list[Outcome]]:
        """Start what is due now; the exit code is the worst of the game days started."""
        outcomes: list[Outcome] = []
        now = self.now()
        due = sorted(((previous_slot(e.schedule, now), e) for e in self.entries),
                     key=lambda item: (item[0], item[1].name))
        for slot, entry in due:
            if self.stop_signal is not None:
                break
            if now - slot > self.grace:
                continue
            outcome = self.start(entry, slot)
            if outcome is not None:
                outcomes.append(outcome)
        self._note_stop()
        if not outcomes and self.stop_signal is None:
            self.log("nothing due")
        return worst_exit_code(o.exit_code for o in outcomes), outcomes

    def run_forever(self) -> int:
        """Wait for slots and start their game days until SIGTERM/SIGINT."""
        pending = {e: next_slot(e.schedule, self.now()) for e in self.entries}
        for entry, at in pending.items():
            self.log(f"{entry.name} ({entry.schedule}): next run at {iso(at)}")
        while self.stop_signal is None:
            now = self.now()
            due = sorted(((at, e) for e, at in pending.items() if at <= now),
                         key=lambda item: (item[0], item[1].name))
            if not due:
                wait = (min(pending.values()) - now).total_seconds()
                self._wake.wait(min(max(wait, 0.01), MAX_WAIT))
                continue
            for slot, entry in due:
                if self.stop_signal is not None:
                    break
                if self.now() - slot <= self.grace:
                    self.start(entry, slot)
                else:
                    self.log(f"{entry.name}: missed the run at {iso(slot)} (more than "
                             f"{self.grace} late)")
                # Slots that passed while it ran are dropped, except within the grace period.
                pending[entry] = next_slot(entry.schedule, max(slot, self.now() - self.grace))
                if self.stop_signal is None:
                    self.log(f"{entry.name}: next run at {iso(pending[entry])}")
        self._note_stop()
        return self.interrupted_code or 0

    # --- one game day ------------------------------------------------------------------

    def start(self, entry: Entry, slot: datetime) -> Outcome | None:
        """Run `entry` for `slot` unless the lock is held or the slot already ran."""
        if self._already_started(entry, slot):
            return None
        fd = acquire_lock(self.state_dir, entry.name)
        if fd is None:
            holder = lock_holder(self.state_dir)
            self.log(f"{entry.name}: not starting the run due at {iso(slot)}: another game "
                     f"day is running ({holder})")
            return Outcome(entry.name, iso(slot), "skipped_locked", exit_code=3, detail=holder)
        try:
            # Again under the lock: another scheduler may have run it while we looked.
            if self._already_started(entry, slot):
                return None
            return self._run_child(entry, slot, fd)
        finally:
            release_lock(fd)

    def _already_started(self, entry: Entry, slot: datetime) -> bool:
        last = last_gameday_start(self.state_dir, entry.name)
        if last is None or last < slot:
            return False
        self.log(f"{entry.name}: the run due at {iso(slot)} was already started at "
                 f"{iso(last)}; not starting it again")
        return True

    def _run_child(self, entry: Entry, slot: datetime, fd: int) -> Outcome:
        report_dir = self.report_root / f"{entry.name}-{self.now():%Y%m%dT%H%M%SZ}"
        command = [sys.executable, "-m", "chaosrunner", "gameday", str(entry.path),
                   "--state-dir", str(self.state_dir), "--report-dir", str(report_dir),
                   *self.child_flags]
        env = {**os.environ, LOCK_FD_ENV: str(fd), TRIGGER_ENV: "schedule"}
        started = time.monotonic()
        # Own process group: a terminal's Ctrl-C reaches the scheduler only, which forwards
        # it once, instead of both at once. stdout -> stderr: stdout is for --output json.
        self.child = subprocess.Popen(command, env=env, pass_fds=(fd,), process_group=0,
                                      stdout=_stderr_fd())
        self.log(f"{entry.name}: started (due {iso(slot)}; pid {self.child.pid}; "
                 f"reports {report_dir})")
        if self.stop_signal is not None:  # a signal that came while it was being spawned
            self._forward(getattr(signal, self.stop_signal))
        code = self._wait_child(self.child)
        self.child = None
        outcome = self._outcome(entry, slot, code, report_dir)
        self.log(f"{entry.name}: {outcome.verdict} (exit {code}) after "
                 f"{time.monotonic() - started:.1f}s"
                 + (f": {outcome.detail}" if outcome.detail else ""))
        if outcome.verdict == Verdict.INTERRUPTED:
            self.interrupted_code = code
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _wait_child(self, child: subprocess.Popen[bytes]) -> int:
        forwarded_at: float | None = None
        while True:
            try:
                return child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            if self.stop_signal is None:
                continue
            self._note_stop()
            now = time.monotonic()
            if forwarded_at is None:
                forwarded_at = now
            elif now - forwarded_at >= FORWARD_AGAIN:
                forwarded_at = now
                self._forward(getattr(signal, self.stop_signal))

    def _outcome(self, entry: Entry, slot: datetime, code: int, report_dir: Path) -> Outcome:
        outcome = Outcome(entry.name, iso(slot), "ran", exit_code=code,
                          verdict=_verdict_of(code), report_dir=str(report_dir))
        if code < 0:
            outcome.verdict = Verdict.INTERRUPTED.value
            outcome.detail = f"killed by {signal.Signals(-code).name}"
            outcome.exit_code = 128 - code
        try:
            data = json.loads((report_dir / "gameday.json").read_text())
        except (OSError, ValueError):
            return outcome
        outcome.verdict = data.get("verdict", outcome.verdict)
        outcome.detail = data.get("reason") or outcome.detail
        return outcome


def worst_exit_code(codes: Any) -> int:
    """The exit code whose verdict is the most severe (see chaosrunner.gameday.run)."""
    def rank(code: int) -> int:  # a code chaosrunner does not exit with ranks as invalid
        return (Verdict.from_exit_code(code) or Verdict.INVALID).rank

    return max((code for code in codes if code is not None), key=rank, default=0)


def _verdict_of(code: int) -> str:
    verdict = Verdict.from_exit_code(code)
    return verdict.value if verdict is not None else "error"


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stderr (tests, embedding)
        return 2

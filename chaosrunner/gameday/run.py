"""Game days (DESIGN.md 2.3): a sequence of experiments, gated by the error budget policy.

    loaded = load_gameday(Path("gamedays/q4-checkout.yaml"))      # validates every file
    with gameday_lock(state_dir, loaded.gameday.name):            # chaosrunner.gameday.lock
        report = run_gameday(loaded, options, Path("reports/q4-checkout-..."))

Rules, written down because they are the contract of `chaosrunner gameday`:

- Every experiment file is loaded and validated before the first one runs: a typo in the
  third experiment is an `invalid` game day (exit 4), not a surprise after two have run.
- Experiments run in the order listed, each with its own report directory
  `<game-day dir>/<NN>-<experiment>/`.
- Before each one the game day's `min_budget_remaining` is handed to the engine
  (`RunOptions.min_budget_remaining`, on top of the experiment's own gate), which reads
  the remaining budget afresh — earlier experiments may have spent it — and refuses with
  `not_started` (exit 3) and the figures when too little is left.
- `stop_on` decides when the day stops early:
  `failure` — after any experiment that did not pass (failed, aborted, not_started, ...);
  `abort` — after an aborted one; `never` — runs them all. Whatever `stop_on` says, the
  day stops after an `interrupted` experiment (SIGINT/SIGTERM: the operator wants out) and
  after `rollback_incomplete` (something is still broken: run `chaosrunner recover`
  before injecting anything else). The experiments not run are listed as `skipped`.
- Overall verdict and exit code: the worst verdict among the experiments that ran, by
  `Verdict.rank` (rollback_incomplete > interrupted > invalid > aborted > failed >
  not_started > passed); the exit code is that experiment's (interrupted: 130 for
  SIGINT, 143 for SIGTERM).
  A game day stopped by a signal before any experiment ran is `interrupted`.
- A halt (`chaosrunner halt`, any halt source) ends the whole day, as SIGTERM does: the
  running experiment aborts and rolls back, nothing more starts, and the report's `halted`
  and reason say so. A halt set before the day starts runs nothing (`not_started`, exit 3).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from chaosrunner.app.load import LoadedGameDay
from chaosrunner.app.run import run_file
from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.halt import CLEAR_HINT, HALT_PREFIX, HALTED_PREFIX, HaltSources
from chaosrunner.errors import ChaosRunnerError, Verdict
from chaosrunner.gameday.report import (
    ExperimentOutcome,
    GameDayReport,
    write_gameday_reports,
)
from chaosrunner.history import RUNNING, GameDayRow, record_gameday, tag_gameday
from chaosrunner.report.model import RunReport
from chaosrunner.timestamps import iso, seconds_between

# `chaosrunner schedule` tells the `gameday` child it was started on a schedule (history).
TRIGGER_ENV = "CHAOSRUNNER_GAMEDAY_TRIGGER"

ALWAYS_STOP = frozenset({Verdict.INTERRUPTED, Verdict.ROLLBACK_INCOMPLETE})
STOP_ON: dict[str, frozenset[Verdict]] = {
    "failure": frozenset(Verdict) - {Verdict.PASSED},
    "abort": frozenset({Verdict.ABORTED}),
    "never": frozenset(),
}

RunExperiment = Callable[[Path, RunOptions, "str | None"], RunReport]


# --- signals between experiments -------------------------------------------------------------


class StopRequest:
    """SIGINT/SIGTERM while no experiment is running: finish the day, run nothing more.

    During an experiment the engine owns both signals (it rolls back and the experiment is
    `interrupted`). Between experiments, and while the next one is being loaded, these
    handlers note the signal; if it lands while an experiment is starting, before the
    engine took the signals over, it raises `StopGameDay` (nothing is injected yet).
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.starting = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous.setdefault(number, signal.getsignal(number))
            signal.signal(number, self._handle)

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(number).name
        if self.starting:
            self.starting = False
            raise StopGameDay(self.signal)


class StopGameDay(KeyboardInterrupt):
    """Raised by the handler while an experiment is starting. A KeyboardInterrupt, because
    asyncio lets only those (and SystemExit) through its callbacks to the caller."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


# --- running ---------------------------------------------------------------------------------


def run_gameday(loaded: LoadedGameDay, options: RunOptions, report_dir: Path,
                output: str | None = None, run_experiment: RunExperiment | None = None,
                trigger: str = "cli", stop: StopRequest | None = None) -> GameDayReport:
    """Run the experiments in order, gate, stop per `stop_on`, write the game-day report."""
    runner = run_experiment or run_file
    gameday = loaded.gameday
    report = _new_report(loaded, report_dir, trigger)
    report.experiments = [ExperimentOutcome(i + 1, file, name) for i, (file, _, name)
                          in enumerate(loaded.experiments)]
    stop = stop or StopRequest()
    halts = HaltSources.for_run(options.state_dir, options.halt_source)
    halted: str | None = None
    _record(options.state_dir, report, running=True)  # a scheduler sees it has started
    stop.install()
    try:
        for outcome, (_, path, _) in zip(report.experiments, loaded.experiments, strict=True):
            halted = halts.check_quietly()  # a halt ends the day: nothing more starts
            if halted is not None:
                break
            run_options = dataclasses.replace(
                options, report_dir=report_dir / _dir_name(outcome), junit=None,
                min_budget_remaining=gameday.min_budget_remaining,
                observe=options.observe
                and options.observe.for_gameday(gameday, loaded.notify_places))
            run = _run_one(runner, path, run_options, output, stop)
            if run is None:
                break
            _fill(outcome, run)
            _tag(options.state_dir, run, report)
            halted = halted_by(run)
            if halted is not None or run.verdict in ALWAYS_STOP \
                    or run.verdict in STOP_ON[gameday.stop_on]:
                break
        finish(report, stop.signal, halted)
        write_gameday_reports(report, report_dir)
        _record(options.state_dir, report)
    finally:
        stop.uninstall()
    return report


def _run_one(runner: RunExperiment, path: Path, options: RunOptions, output: str | None,
             stop: StopRequest) -> RunReport | None:
    """One experiment through `runner` (run_file); None when a signal stopped the day first."""
    # Imported here: process-wide signal state: only a running game day arms it.
    from chaosrunner.engine.signals import SIGNALS

    stop.starting = True
    try:
        # A signal while the previous experiment wrote its reports was noted, not lost.
        stop.signal = stop.signal or SIGNALS.take_pending()
        if stop.signal is not None:
            return None
        # With --output json, stdout carries the game day's one JSON document only.
        redirect = (contextlib.redirect_stdout(sys.stderr) if output == "json"
                    else contextlib.nullcontext())
        with redirect:
            return runner(path, options, output)
    except ChaosRunnerError as exc:  # the file changed since validation, an unwritable dir
        now = iso(datetime.now(UTC))
        return RunReport(verdict=exc.verdict, exit_code=exc.exit_code,
                         experiment=path.stem, run_id="", started_at=now, ended_at=now,
                         source=str(path), reason=str(exc))
    except KeyboardInterrupt:
        # StopGameDay, or a SIGINT in the instant after run_file gave the default handlers
        # back: in both cases no fault of this experiment is in place.
        stop.signal = stop.signal or "SIGINT"
        return None
    finally:
        stop.starting = False
        stop.install()  # run_file installed chaosrunner.engine.signals' handler


def _new_report(loaded: LoadedGameDay, report_dir: Path, trigger: str) -> GameDayReport:
    gameday = loaded.gameday
    now = datetime.now(UTC)
    return GameDayReport(
        name=gameday.name, run_id=f"{gameday.name}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}",
        verdict=Verdict.PASSED, exit_code=0, started_at=iso(now), ended_at=None,
        duration_seconds=None, reason=None, source=str(loaded.path),
        description=gameday.description, schedule=gameday.schedule, stop_on=gameday.stop_on,
        min_budget_remaining=gameday.min_budget_remaining, report_dir=str(report_dir),
        trigger=trigger, experiments=[])


def _dir_name(outcome: ExperimentOutcome) -> str:
    return f"{outcome.index:02d}-{outcome.experiment}"


def _fill(outcome: ExperimentOutcome, run: RunReport) -> None:
    outcome.status = "ran"
    outcome.verdict, outcome.exit_code, outcome.run_id = run.verdict, run.exit_code, run.run_id
    outcome.report_dir = run.report_dir
    outcome.link = _dir_name(outcome) if run.report_dir else None
    outcome.started_at, outcome.ended_at = run.started_at, run.ended_at
    outcome.duration_seconds = seconds_between(run.started_at, run.ended_at)
    outcome.reason = run.reason
    outcome.abort_reason = run.abort.reason if run.abort else None
    outcome.criteria_passed = sum(1 for c in run.criteria if c.passed)
    outcome.criteria_total = len(run.criteria)
    outcome.budget = {name: {"consumed": b.consumed, "remaining_before": b.remaining_before,
                             "remaining_after": b.remaining_after}
                      for name, b in run.budget.items()}


def halted_by(run: RunReport) -> str | None:
    """The halt that stopped (or refused) this experiment, if one did."""
    if run.abort is not None and run.abort.reason.startswith(HALT_PREFIX):
        return run.abort.reason.removeprefix(HALT_PREFIX).strip()
    if (run.reason or "").startswith(HALTED_PREFIX):
        return (run.reason or "").removeprefix(HALTED_PREFIX).split(f"; {CLEAR_HINT}")[0].strip()
    return None


def finish(report: GameDayReport, signal_name: str | None, halted: str | None = None) -> None:
    """Overall verdict, exit code and reason (the rule is in this module's docstring)."""
    ran = [o for o in report.experiments if o.status == "ran"]
    report.ended_at = iso(datetime.now(UTC))
    report.duration_seconds = seconds_between(report.started_at, report.ended_at)
    report.verdict, report.exit_code = Verdict.NOT_STARTED, Verdict.NOT_STARTED.exit_code
    if ran:
        worst = max(ran, key=lambda o: o.verdict.rank if o.verdict else 0)
        report.verdict = worst.verdict or Verdict.PASSED
        report.exit_code = worst.exit_code or 0
    if signal_name is not None and report.verdict is not Verdict.ROLLBACK_INCOMPLETE:
        report.verdict = Verdict.INTERRUPTED
        report.exit_code = Verdict.INTERRUPTED.exit_code_for(signal_name)
    report.halted = halted
    report.reason = _reason(report, ran, signal_name)
    report.notes = _notes(report, ran)


def _reason(report: GameDayReport, ran: list[ExperimentOutcome],
            signal_name: str | None) -> str | None:
    skipped = len(report.experiments) - len(ran)
    last = ran[-1] if ran else None
    if report.halted is not None and signal_name is None:
        return f"halted: {report.halted}; the game day ended, {skipped} experiment(s) not run"
    if signal_name is not None and (last is None or last.verdict is not Verdict.INTERRUPTED):
        return f"stopped by {signal_name}; {skipped} experiment(s) not run"
    if last is not None and last.verdict in ALWAYS_STOP:
        why = f"{last.experiment}: {last.reason or last.verdict}"
        return f"{why}; {skipped} experiment(s) not run" if skipped else why
    if skipped and last is not None:
        return (f"stopped after {last.experiment}: {last.verdict} (stop_on: "
                f"{report.stop_on}); {skipped} experiment(s) skipped")
    if report.verdict is not Verdict.PASSED:
        bad = [o.experiment for o in ran if o.verdict is not Verdict.PASSED]
        return f"{len(bad)} of {len(ran)} experiment(s) did not pass: {', '.join(bad)}"
    return None


def _notes(report: GameDayReport, ran: list[ExperimentOutcome]) -> list[str]:
    notes: list[str] = []
    if report.min_budget_remaining is None:
        return notes
    for outcome in ran:
        known = [b for b in outcome.budget.values() if b.get("remaining_before") is not None]
        if outcome.verdict is not Verdict.NOT_STARTED and not known:
            notes.append(f"{outcome.experiment}: min_budget_remaining not applied: no SLO "
                         "source could tell the remaining error budget (probe SLIs cannot; "
                         "PromQL ratio SLIs can)")
    return notes


def _tag(state_dir: Path, run: RunReport, report: GameDayReport) -> None:
    if not run.run_id:
        return
    tag_gameday(state_dir, run.run_id, report.name, report.run_id)


def _record(state_dir: Path, report: GameDayReport, running: bool = False) -> None:
    record_gameday(state_dir, GameDayRow(
        run_id=report.run_id, name=report.name,
        verdict=RUNNING if running else report.verdict.value,
        exit_code=report.exit_code, started_at=report.started_at, ended_at=report.ended_at,
        duration_seconds=report.duration_seconds, reason=report.reason,
        report_dir=report.report_dir, source=report.source, trigger=report.trigger))


def default_report_dir(name: str, root: Path = Path("reports")) -> Path:
    return root / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def print_summary(report: GameDayReport, output: str | None, stream: TextIO | None = None
                  ) -> None:
    """The game day's outcome on stdout: one JSON document, or a few lines for people."""
    out = stream or sys.stdout
    if output == "json":
        print(json.dumps(report.to_json(), indent=2), file=out)
        return
    print(f"\ngame day {report.name}: {report.verdict.upper()} (exit {report.exit_code})",
          file=out)
    if report.reason:
        print(f"  reason: {report.reason}", file=out)
    for o in report.experiments:
        verdict = o.verdict if o.status == "ran" else "skipped"
        print(f"  {o.index:2d}. {o.experiment:30} {verdict:20} "
              f"{'' if o.exit_code is None else f'exit {o.exit_code}'}", file=out)
    for note in report.notes:
        print(f"  note: {note}", file=out)
    print(f"  report: {Path(report.report_dir) / 'gameday.html'}", file=out)

"""Running one experiment file: load, plan, run with signal handling, save the reports,
record the history, tell the outcome. `chaosrunner run`/`plan`, the demo and game days
all run files through `run_file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.engine.events import EventLog
from chaosrunner.history import record_run
from chaosrunner.report.model import RunReport
from chaosrunner.report.writer import write_reports

if TYPE_CHECKING:
    from chaosrunner.engine.backends import Backends
    from chaosrunner.engine.events import Listener

# A live display of the run's events: a listener and the context it shows in
# (`cli.progress.progress_listener`).
Display = Callable[[], "tuple[Listener, AbstractContextManager[Any]]"]


def run_file(path: Path, options: Any, output: str | None = None,
             backends: Backends | None = None, display: Display | None = None) -> RunReport:
    """Load, run with signal handling, write reports, print the outcome. `backends`:
    production drivers and sources unless a test hands in its fakes; `display`: the
    terminal's live view (not with `output` json)."""
    # Imported here: process-wide signal state, armed only when a file runs.
    from chaosrunner.engine.signals import SIGNALS

    SIGNALS.arm()  # from here on a signal ends in 130/143, never in death by the signal
    # Imported here: the engine loads only when a file runs, never for validate.
    from chaosrunner.app.load import load_runnable
    from chaosrunner.engine.runner import Run, report_dir_for, run_with_signals

    bundle = load_runnable(path, options.variables, backends.drivers if backends else None)
    events = EventLog()
    shown: Any = contextlib.nullcontext()
    if output != "json" and display is not None:
        listener, shown = display()
        events.subscribe(listener)
    run = Run(bundle, options, events=events, backends=backends)
    report_dir = observers = None
    if not options.dry_run:
        run.ledger.check_writable()  # exit 4 before anything is injected
        observers = observe_run(run, options, events)
        report_dir = report_dir_for(bundle.experiment.name, options, run.clock)
        events.open_journal(report_dir / "journal.jsonl")
    try:
        with shown:
            report = asyncio.run(run_with_signals(run))
        if options.dry_run:
            print_plan(run, output)
            return report
        assert report_dir is not None and observers is not None
        report.report_dir = str(report_dir)
        observers.finish(report)  # the end message names the report dir; the report
        files = save_reports(report, report_dir, options)  # lists where it was announced
        print_outcome(report, files, output)
        return report
    finally:
        events.close()
        if events.journal_error:
            print(f"chaosrunner: the journal (journal.jsonl in {report_dir}) could not be "
                  f"written in full: {events.journal_error}", file=sys.stderr)


def observe_run(run: Any, options: Any, events: Any) -> Any:
    """Notifications, annotations, trace, metrics and alert stop conditions for `run`
    (chaosrunner.observe), hooked on its event stream."""
    # Imported here: observers (apprise, OpenTelemetry) load only for real runs.
    from chaosrunner.observe.settings import ObserveSettings, build

    settings = options.observe
    assert settings is None or isinstance(settings, ObserveSettings)
    if settings is not None:
        settings.start()
    hub, run.hooks = build(run.bundle, settings, run.run_id)
    events.subscribe(hub.listener)
    return hub


def save_reports(report: RunReport, directory: Path, options: Any) -> list[Path]:
    """Write the reports and the history entry. A failure here is told on stderr and never
    replaces the run's exit code: after the rollback, exit 5 (run `recover`) or 2 must
    reach the pipeline even when the disk is full or a renderer breaks."""
    files: list[Path] = []
    try:
        files = write_all(report, directory, options.junit)
    except Exception as exc:  # noqa: BLE001 - the verdict must survive a broken writer
        _not_saved(report, "reports", exc)
    try:
        record_history(options.state_dir, report)
    except Exception as exc:  # noqa: BLE001 - same
        _not_saved(report, "run history", exc)
    return files


def _not_saved(report: RunReport, what: str, exc: Exception) -> None:
    print(f"chaosrunner: the run ended {report.verdict} (exit {report.exit_code}) but its "
          f"{what} could not be written: {exc}", file=sys.stderr)


def write_all(report: RunReport, directory: Path, junit: Path | None) -> list[Path]:
    return write_reports(report, directory, junit)


def record_history(state_dir: Path, report: RunReport) -> None:
    """Keep the run in the history database (`chaosrunner runs`)."""
    record_run(state_dir, report)


def print_plan(run: Any, output: str | None) -> None:
    plan = run.plan.describe() if run.plan is not None else []
    if output == "json":
        print(json.dumps({"experiment": run.experiment.name, "verdict": run.verdict().value,
                          "reason": run.state.reason, "faults": plan}, indent=2))
        return
    if run.state.reason:
        print(f"plan refused: {run.state.reason}")
        return
    print(f"plan for {run.experiment.name} (dry run: nothing injected)")
    for item in plan:
        until = "end of fault phase" if item["until"] is None else f"{item['until']:g}s"
        print(f"  {item['fault']}: {item['action']} on {len(item['targets'])} of "
              f"{item['matched']} matched, from {item['at']:g}s until {until}")
        for target in item["targets"]:
            print(f"      - {target}")


def print_outcome(report: RunReport, files: list[Path], output: str | None) -> None:
    if output == "json":
        print(json.dumps({
            "verdict": report.verdict, "exit_code": report.exit_code,
            "experiment": report.experiment, "run_id": report.run_id,
            "reason": report.reason, "report_dir": report.report_dir,
            "criteria": [{"text": c.text, "observed": c.observed, "passed": c.passed,
                          "judged": c.judged} for c in report.criteria],
            "recovery_seconds": report.recovery_seconds,
            "files": [str(f) for f in files]}, indent=2))
        return
    out = sys.stdout
    print(f"\n{report.experiment}: {report.verdict.upper()} (exit {report.exit_code})", file=out)
    if report.reason:
        print(f"  reason: {report.reason}", file=out)
    for criterion in report.criteria:
        if not criterion.judged:
            print(f"  [{criterion.detail}] {criterion.text}", file=out)
            continue
        mark = "pass" if criterion.passed else "FAIL"
        observed = "no data" if criterion.observed is None else f"{criterion.observed:.4g}"
        print(f"  [{mark}] {criterion.text}  (observed {observed})", file=out)
    if report.recovery_seconds is not None:
        print(f"  recovered {report.recovery_seconds:.2f}s after rollback", file=out)
    print(f"  reports: {report.report_dir}", file=out)

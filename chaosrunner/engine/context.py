"""Run options and the event stream: everything a run owns, in one place, no globals."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from chaosrunner.engine.clock import Clock, RealClock
from chaosrunner.errors import InvalidInput
from chaosrunner.secrets import redact_data
from chaosrunner.timestamps import iso

if TYPE_CHECKING:
    from chaosrunner.spec.models import GameDay


class ObserveConfig(Protocol):
    """The observers' settings (`chaosrunner.observe.settings.ObserveSettings`): the CLI
    sets them, `app.run` hands them to the observers; the engine only carries them, so
    it knows nothing of the observe package."""

    def start(self) -> None: ...

    def for_gameday(self, gameday: GameDay) -> ObserveConfig: ...


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path = Path(".chaosrunner")
    report_dir: Path | None = None
    junit: Path | None = None
    allow_production: bool = False
    allow_exec: bool = False
    dry_run: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)
    revert_retries: int = 3
    revert_timeout: float = 60.0
    seed: int | None = None
    # A game day's own gate, applied on top of the experiment's min_budget_remaining.
    min_budget_remaining: float | None = None
    # Start a watchdog process that takes the faults back if this process dies. The CLI
    # turns it on (`--no-watchdog` off); embedders and in-process tests opt in.
    watchdog: bool = False
    # `--halt-source` (else CHAOSRUNNER_HALT_SOURCE): a fleet-wide halt, besides the state
    # dir's HALT file (chaosrunner.engine.halt).
    halt_source: str | None = None
    # Notifications, annotations, traces and metrics (chaosrunner.observe): set by the CLI.
    observe: ObserveConfig | None = None


class StopCondition(Protocol):
    """Something outside the run that must not be in a given state while faults are in
    (a firing alert, chaosrunner.observe.alerts). Polled like the halt file."""

    @property
    def source(self) -> str:
        """Where it is read, for messages (no secrets)."""
        ...

    async def check(self) -> str | None:
        """The reason to stop, or None; raises SourceError when it cannot tell."""
        ...


@dataclass(frozen=True)
class RunHooks:
    """What observers lend a run: stop conditions, and the headers that carry the run's
    trace into probe requests (W3C traceparent)."""

    stop_conditions: tuple[StopCondition, ...] = ()
    trace_headers: Callable[[], Mapping[str, str]] | None = None


Listener = Callable[[dict[str, Any]], None]


class EventLog:
    """The journal: every event as it happens, to `journal.jsonl` and to listeners.

    A failing listener (a broken terminal, a full pipe) is isolated: it is dropped and
    the run goes on, because a display must never stop a rollback.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or RealClock()
        self.events: list[dict[str, Any]] = []
        self.listeners: list[Listener] = []
        self._journal: TextIO | None = None
        self.journal_error: str | None = None  # the first write that failed (disk full)
        self.t0 = self.clock.monotonic()

    def open_journal(self, path: Path) -> None:
        """Start the journal; InvalidInput (exit 4, before anything runs) when the report
        directory cannot be written at all."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._journal = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"report directory {path.parent} cannot be written: "
                               f"{exc.strerror or exc}; pass --report-dir to a writable "
                               "place") from None
        for event in self.events:
            self._write(event)

    def close(self) -> None:
        """Close the journal; a failure (disk full) is kept in `journal_error`, never
        raised: the run's verdict comes first."""
        if self._journal is not None:
            journal, self._journal = self._journal, None
            try:
                journal.close()
            except (OSError, ValueError) as exc:
                self.journal_error = self.journal_error or str(exc)

    def emit(self, kind: str, **data: Any) -> dict[str, Any]:
        event = redact_data({"time": iso(self.clock.now()),
                             "t": round(self.clock.monotonic() - self.t0, 3), "event": kind,
                             **data})
        self.events.append(event)
        self._write(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a display must never break the run
                self.listeners.remove(listener)
        return event

    def _write(self, event: dict[str, Any]) -> None:
        if self._journal is None:
            return
        try:
            self._journal.write(json.dumps(event, default=str) + "\n")
            self._journal.flush()
        except (OSError, ValueError) as exc:  # disk full: the run goes on, the end says so
            self.journal_error = self.journal_error or str(exc)


def print_listener(stream: TextIO | None = None) -> Listener:
    """Plain-line progress for terminals and CI logs: phase, SLIs, budget burn."""
    out = stream or sys.stderr

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line:
            print(f"[{event['t']:7.2f}s] {line}", file=out, flush=True)

    return show


def describe_event(event: dict[str, Any]) -> str | None:
    kind = event["event"]
    if kind == "phase":
        return f"== {event['phase']} =="
    if kind == "sample":
        parts = [f"{name}={_fmt(v)}{'' if ok in (True, None) else ' (!)'}"
                 for name, (v, ok) in event["slos"].items()]
        burn = event.get("burn")
        if burn:
            parts.append("burn " + ", ".join(f"{k}={_fmt(v)}x" for k, v in burn.items()))
        return "   " + "  ".join(parts)
    if kind in ("inject", "revert"):
        return f"{kind} {event['fault']} ({event['action']}) -> {event['target']}"
    if kind in ("abort", "refused", "error", "warning", "interrupt", "verdict", "recovered",
                "check", "plan"):
        return f"{kind}: {event.get('message', '')}"
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "no-data"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

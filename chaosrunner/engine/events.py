"""The journal's events: one definition per event, and the log that records them.

Every event a run emits is one of the frozen dataclasses below. It reaches the journal
(`journal.jsonl`), the report (`RunReport.events`) and every listener as one JSON object:
`{"time": ISO-8601, "t": seconds since start, "event": <kind>, <its fields>}`.

Subscribing (observers: notifications, Grafana, OpenTelemetry, metrics; displays):

    log.subscribe(listener)                   # every event, as its journal dict
    log.on(Injected, lambda e: ...)           # one kind, as its typed dataclass

A listener that raises is isolated: it is unsubscribed, a `warning` event says so, and
the run goes on; a display or an observer must never stop a rollback. Listeners run in
the engine's event loop: they must return quickly (hand slow work to a thread).

The catalogue (kind: fields):

    phase       phase                          a phase begins (plan, before, faults, ...)
    plan        message, faults                the plan: each fault's targets and window
    refused     message                        not starting; nothing was injected
    check       message                        a steady-state check (before/after) of one SLO
    sample      phase, slos, burn              one reading of every SLI (burn: guard's rates)
    inject      fault, action, target, key     a driver call to inject has started
    injected    fault, key, target             ... and returned: the fault is in
    reverting   fault, key, target             a revert starts (with retries)
    revert      fault, action, target, key     the fault is taken back
    abort       message                        a safety limit, halt or driver error: roll back
    interrupt   message                        SIGINT/SIGTERM (a second one is refused)
    warning     message                        something to know that changes no verdict
    error       message                        something is left broken (rollback incomplete)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TextIO, TypeVar

from chaosrunner.engine.clock import Clock, RealClock
from chaosrunner.errors import InvalidInput
from chaosrunner.secrets import redact_data
from chaosrunner.timestamps import iso


@dataclass(frozen=True)
class Event:
    """Base of every journal event; `kind` is its `event` field in the journal."""

    kind: ClassVar[str]

    def data(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class PhaseBegun(Event):
    kind: ClassVar[str] = "phase"
    phase: str


@dataclass(frozen=True)
class Planned(Event):
    kind: ClassVar[str] = "plan"
    message: str
    faults: list[dict[str, Any]]


@dataclass(frozen=True)
class RunRefused(Event):
    kind: ClassVar[str] = "refused"
    message: str


@dataclass(frozen=True)
class Checked(Event):
    kind: ClassVar[str] = "check"
    message: str


@dataclass(frozen=True)
class Sampled(Event):
    kind: ClassVar[str] = "sample"
    phase: str
    slos: Mapping[str, tuple[float | None, bool | None]]  # SLO -> (value, good)
    burn: Mapping[str, float | None] | None  # "<slo> <window>" -> burn rate (fault phase)


@dataclass(frozen=True)
class Injecting(Event):
    kind: ClassVar[str] = "inject"
    fault: str
    action: str
    target: str
    key: str


@dataclass(frozen=True)
class Injected(Event):
    kind: ClassVar[str] = "injected"
    fault: str
    key: str
    target: str


@dataclass(frozen=True)
class Reverting(Event):
    kind: ClassVar[str] = "reverting"
    fault: str
    key: str
    target: str


@dataclass(frozen=True)
class Reverted(Event):
    kind: ClassVar[str] = "revert"
    fault: str
    action: str
    target: str
    key: str


@dataclass(frozen=True)
class AbortRequested(Event):
    kind: ClassVar[str] = "abort"
    message: str


@dataclass(frozen=True)
class Interrupted(Event):
    kind: ClassVar[str] = "interrupt"
    message: str


@dataclass(frozen=True)
class Warned(Event):
    kind: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "error"
    message: str


CATALOGUE: dict[str, type[Event]] = {cls.kind: cls for cls in (
    PhaseBegun, Planned, RunRefused, Checked, Sampled, Injecting, Injected, Reverting,
    Reverted, AbortRequested, Interrupted, Warned, Failed)}

Listener = Callable[[dict[str, Any]], None]
E = TypeVar("E", bound=Event)


class EventLog:
    """The journal: every event as it happens, to `journal.jsonl` and to listeners
    (see the module docstring for subscribing)."""

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

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every event from now on, as its journal dict."""
        self.listeners.append(listener)

    def on(self, kind: type[E], callback: Callable[[E], None]) -> None:
        """Call `callback` with every event of one kind, as its dataclass."""

        def listener(event: dict[str, Any]) -> None:
            if event["event"] == kind.kind:
                data = {f.name: event[f.name] for f in fields(kind)}
                callback(kind(**data))

        self.subscribe(listener)

    def emit(self, event: Event) -> dict[str, Any]:
        """Record `event` and tell every listener; returns its journal dict."""
        record = redact_data({"time": iso(self.clock.now()),
                              "t": round(self.clock.monotonic() - self.t0, 3),
                              "event": event.kind, **event.data()})
        self.events.append(record)
        self._write(record)
        failed: list[str] = []
        for listener in list(self.listeners):
            try:
                listener(record)
            except Exception as exc:  # noqa: BLE001 - a listener must never break the run
                self.listeners.remove(listener)
                name = getattr(listener, "__qualname__", type(listener).__name__)
                failed.append(f"event listener {name} failed and was unsubscribed: "
                              f"{type(exc).__name__}: {exc}")
        for message in failed:  # told after every other listener heard this event
            self.emit(Warned(message))
        return record

    def _write(self, event: dict[str, Any]) -> None:
        if self._journal is None:
            return
        try:
            self._journal.write(json.dumps(event, default=str) + "\n")
            self._journal.flush()
        except (OSError, ValueError) as exc:  # disk full: the run goes on, the end says so
            self.journal_error = self.journal_error or str(exc)

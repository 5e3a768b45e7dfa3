"""How a run is told to stop, and what it has decided so far: the one object every part
of the engine (faults, sampling, watchers) shares with the phase sequencer.

Signals only call `interrupt`, and the guard, a halt, a stop condition or a driver error
only call `request_abort`: both set events the phases wait on, never raise into them,
so the rollback always runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from chaosrunner.engine.clock import Clock
from chaosrunner.engine.events import AbortRequested, EventLog, Interrupted, RunRefused
from chaosrunner.engine.guard import AbortDecision
from chaosrunner.errors import Verdict
from chaosrunner.report.model import AbortRecord
from chaosrunner.timestamps import iso


@dataclass
class RunState:
    """What the run has decided; `engine.outcome` turns it into the verdict."""

    verdict: Verdict | None = None  # decided early: not_started, aborted before faults
    reason: str | None = None
    abort: AbortRecord | None = None
    signal: str | None = None
    injected_any: bool = False
    rollback_failed: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None
    recovered: bool | None = None


class Control:
    """The run's stop switches and its state."""

    def __init__(self, clock: Clock, events: EventLog) -> None:
        self.clock = clock
        self.events = events
        self.state = RunState()
        self.abort_event = asyncio.Event()  # abort, halt or signal: stop faults, roll back
        self.steps_stopped = asyncio.Event()  # rollback began: in-flight injects let go
        self.interrupted = asyncio.Event()  # signal only: also cut the after-phase short
        self.t0 = clock.monotonic()

    @property
    def aborting(self) -> bool:
        return self.abort_event.is_set()

    def elapsed(self) -> float:
        """Seconds since the run started (the `t` of samples and charts)."""
        return round(self.clock.monotonic() - self.t0, 3)

    def interrupt(self, signal_name: str) -> None:
        """Called from a signal handler: abort, roll back, exit 130/143. Never skips rollback."""
        if self.state.signal is not None:
            self.events.emit(Interrupted(f"{signal_name} again: rollback is in progress "
                                         "and will not be skipped"))
            return
        self.state.signal = signal_name
        self.events.emit(Interrupted(f"{signal_name}: aborting and rolling back"))
        self.abort_event.set()
        self.interrupted.set()

    def request_abort(self, decision: AbortDecision | None, reason: str) -> None:
        """Stop the faults and roll back; the first reason is the one recorded."""
        if self.abort_event.is_set():
            return
        rates = dict(decision.burn_rates) if decision else {}
        self.state.abort = AbortRecord(
            reason=reason, at=iso(self.clock.now()), t=self.elapsed(),
            budget_consumed=decision.budget_consumed if decision else None,
            burn_rates=rates, slo=decision.slo if decision else None)
        self.events.emit(AbortRequested(reason))
        self.abort_event.set()

    def refuse(self, reason: str) -> bool:
        """Not starting (plan, gate, steady state, watchdog): nothing was injected."""
        self.state.verdict = Verdict.NOT_STARTED
        self.state.reason = reason
        self.events.emit(RunRefused(reason))
        return False

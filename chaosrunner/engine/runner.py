"""A run, phase by phase (DESIGN.md 4): plan -> before -> faults -> rollback -> after -> verdict.

`Run` only sequences the phases. The parts live beside it: `control` (how a run is told
to stop), `faults` (in and out, with the one revert-with-retries policy), `sampling`
(the SLIs), `watchers` (halt sources, stop conditions, watchdog), `outcome` (verdict and
report) and `signals` (SIGINT/SIGTERM).

Rollback is in a `finally` and cannot be skipped: signals only set the abort event
(see `Control.interrupt`), never raise into the engine, and a second Ctrl-C is refused.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from pathlib import Path

from chaosrunner.drivers.base import DriverContext
from chaosrunner.engine import outcome
from chaosrunner.engine.backends import Backends
from chaosrunner.engine.clock import Clock, RealClock
from chaosrunner.engine.context import RunHooks, RunOptions
from chaosrunner.engine.control import Control, RunState
from chaosrunner.engine.events import EventLog, Failed, PhaseBegun, Planned, Warned
from chaosrunner.engine.faults import Faults, Injection, RevertPolicy
from chaosrunner.engine.guard import AbortDecision, BudgetGuard
from chaosrunner.engine.halt import HaltSources
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.plan import Plan, make_plan
from chaosrunner.engine.sampling import Sampler
from chaosrunner.engine.timeline import FaultPhase, build_timeline
from chaosrunner.engine.watchers import (
    WatchdogLink,
    halt_gate,
    stop_condition_gate,
    watch_halt,
    watch_stop_conditions,
)
from chaosrunner.errors import (
    DriverError,
    Refused,
    SourceError,
    StateError,
    Verdict,
)
from chaosrunner.report.model import CriterionResult, Phase, RunReport
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.spec.validate import ExperimentBundle
from chaosrunner.timestamps import iso


class Run:
    """Everything one run owns. `await Run(bundle, options).execute()` -> RunReport."""

    def __init__(self, bundle: ExperimentBundle, options: RunOptions,
                 clock: Clock | None = None, events: EventLog | None = None,
                 hooks: RunHooks | None = None, backends: Backends | None = None) -> None:
        self.bundle = bundle
        self.experiment = bundle.experiment
        self.options = options
        self.hooks = hooks or RunHooks()
        self.backends = backends or Backends()
        self.clock = clock or RealClock()
        self.events = events or EventLog(self.clock)
        self.run_id = new_run_id(self.experiment.name, self.clock)
        self.ledger = Ledger(options.state_dir)
        self.halts = HaltSources.for_run(options.state_dir, options.halt_source)
        self.control = Control(self.clock, self.events)
        self.guard = BudgetGuard(self.experiment.abort.budget_limits, bundle.slos,
                                 no_data_grace=max(10.0, 3 * self.interval))
        self.sampler = Sampler(bundle, self.control, self.guard, self.clock, self.events)
        self.faults = Faults(self.control, self.ledger, self.run_id, self.clock, self.events,
                             RevertPolicy(options.revert_retries, options.revert_timeout))
        self.watchdog = WatchdogLink()
        self.phases: list[Phase] = []
        self.plan: Plan | None = None
        self._fault_phase_run: FaultPhase | None = None
        self._watchers: list[asyncio.Future[None]] = []
        self._wall_start = time.time()
        self.started_at = iso(self.clock.now())

    @property
    def interval(self) -> float:
        return self.experiment.steady_state.interval

    @property
    def state(self) -> RunState:
        return self.control.state

    @property
    def injections(self) -> list[Injection]:
        return self.faults.injections

    @property
    def aborting(self) -> bool:
        return self.control.aborting

    def interrupt(self, signal_name: str) -> None:
        """Called from a signal handler: abort, roll back, exit 130/143."""
        self.control.interrupt(signal_name)

    def request_abort(self, decision: AbortDecision | None, reason: str) -> None:
        self.control.request_abort(decision, reason)

    # --- the phases ----------------------------------------------------------------------

    async def execute(self) -> RunReport:
        try:
            await self._phases()
        finally:
            self._stop_watchers()
            await self.sampler.close()
            self.ledger.unregister_runner(self.run_id)
        return self.build_report()

    async def _phases(self) -> None:
        if not await self._plan_phase() or self.options.dry_run:
            return
        if not await self._halt_gate():
            return
        try:
            self.ledger.register_runner(self.run_id, self.experiment.name)
        except StateError as exc:
            self.control.refuse(str(exc))
            return
        self._watch(watch_halt(self.halts, self.control, self.interval))
        if not await self._start_watchdog():
            return
        if self.hooks.stop_conditions:
            self._watch(watch_stop_conditions(self.hooks.stop_conditions, self.control,
                                              self.clock, self.interval,
                                              self.guard.no_data_grace))
        try:
            if await self._before_phase():
                await self._fault_phase()
        finally:
            try:
                await self._rollback_phase()
            finally:
                self.watchdog.finish()
        if self.state.injected_any and not self.state.rollback_failed \
                and self.state.signal is None:
            await self._after_phase()

    async def _halt_gate(self) -> bool:
        """A halt set before the start refuses the run: nothing is injected."""
        try:
            await halt_gate(self.halts)
        except Refused as exc:
            return self.control.refuse(str(exc))
        return True

    async def _start_watchdog(self) -> bool:
        """Start the watchdog before anything is injected; refuse the run when it cannot."""
        if not self.options.watchdog:
            return True
        try:
            await self.watchdog.start(self.options, self.run_id, self.experiment.name,
                                      self.started_at, self.control, self._driver_names())
        except StateError as exc:
            return self.control.refuse(str(exc))
        return True

    def _driver_names(self) -> tuple[str, ...]:
        faults = self.plan.faults if self.plan is not None else ()
        return tuple(sorted({p.fault.action.split(".", 1)[0] for p in faults}))

    async def _plan_phase(self) -> bool:
        self._begin("plan")
        context = DriverContext(run_id=self.run_id, allow_exec=self.options.allow_exec,
                                base_dir=str(self.bundle.base_dir))
        try:
            self.plan = await asyncio.to_thread(
                make_plan, self.bundle, context, self.options.allow_production,
                self.options.allow_exec, self.options.seed, self.backends.drivers)
            await self.sampler.start(self.backends.sources, SourceContext(
                allow_exec=self.options.allow_exec, base_dir=str(self.bundle.base_dir),
                trace_headers=self.hooks.trace_headers))
            await self.sampler.budget_gate(self.experiment.abort.min_budget_remaining,
                                           self.options.min_budget_remaining)
            await stop_condition_gate(self.hooks.stop_conditions)
        except (Refused, DriverError, SourceError) as exc:
            return self.control.refuse(str(exc))
        finally:
            self._end()
        self.events.emit(Planned(f"{len(self.plan.faults)} fault(s)", self.plan.describe()))
        return True

    async def _before_phase(self) -> bool:
        self._begin("before")
        try:
            await self.sampler.observe("before", self.experiment.steady_state.before,
                                       self.control.abort_event)
        finally:
            self._end()
        if self.aborting:
            if self.state.signal is None and self.state.verdict is None:
                self.state.verdict = Verdict.ABORTED
            return False
        failed = [r for r in self.sampler.check_all("before") if not r.passed]
        if failed:
            detail = "; ".join(f"{r.slo}: {r.detail}" for r in failed)
            return self.control.refuse(f"steady state does not hold before any fault: {detail}")
        return True

    async def _fault_phase(self) -> None:
        assert self.plan is not None
        self._begin("faults")
        self.sampler.in_fault_phase = True
        self._fault_phase_run = FaultPhase(self.plan, self.faults, self.sampler,
                                           self.control, self.clock)
        try:
            await self._fault_phase_run.play(build_timeline(self.plan))
        finally:
            self.sampler.in_fault_phase = False
            self._end()

    async def _rollback_phase(self) -> None:
        # Once the faults are being taken back there is nothing left for a halt to stop:
        # a halt now must not turn a run that passes into an aborted one.
        self._stop_watchers()
        if self._fault_phase_run is not None:
            await self._fault_phase_run.finish_step(
                lambda message: self.events.emit(Warned(message)))
        pending = self.faults.pending()
        if not pending:
            return
        self._begin("rollback")
        try:
            for injection in pending:
                await self.faults.revert(injection)
        finally:
            self._end()
        if self.state.rollback_failed:
            self.events.emit(Failed("rollback incomplete: " + "; ".join(
                self.state.rollback_failed) + " -- run `chaosrunner recover`"))

    async def _after_phase(self) -> None:
        self._begin("after")
        rollback_done = self.clock.monotonic()
        try:
            # The after-phase follows a rollback, often an abort's: only a signal ends it.
            await self.sampler.observe("after", self.experiment.steady_state.after,
                                       self.control.interrupted, until_recovered=rollback_done)
        finally:
            self._end()
        if self.state.signal is None:
            self.sampler.check_all("after")

    # --- bookkeeping ---------------------------------------------------------------------

    def _watch(self, watcher: Awaitable[None]) -> None:
        self._watchers.append(asyncio.ensure_future(watcher))

    def _stop_watchers(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()

    def _begin(self, name: str) -> None:
        self.phases.append(Phase(name=name, start=iso(self.clock.now())))
        self.events.emit(PhaseBegun(name))

    def _end(self) -> None:
        self.phases[-1].end = iso(self.clock.now())

    def criteria(self) -> list[CriterionResult]:
        return outcome.criteria(self.state, self.bundle, self.sampler.book)

    def verdict(self) -> Verdict:
        return outcome.verdict(self.state, self.criteria(), self.options.dry_run)

    def build_report(self) -> RunReport:
        return outcome.build_report(outcome.RunRecord(
            bundle=self.bundle, run_id=self.run_id, started_at=self.started_at,
            ended_at=iso(self.clock.now()), state=self.state, phases=self.phases,
            faults=[i.record for i in self.injections], samples=self.sampler.samples,
            book=self.sampler.book, checks=self.sampler.checks,
            budget_before=self.sampler.budget_before,
            budget_window=self.sampler.budget_window, guard=self.guard,
            handles=[(i.record, i.handle) for i in self.injections],
            events=self.events.events, dry_run=self.options.dry_run))


def new_run_id(name: str, clock: Clock) -> str:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


async def run_with_signals(run: Run) -> RunReport:
    """Run with SIGINT/SIGTERM turned into an orderly abort and rollback
    (`chaosrunner.engine.signals`: the handlers stay until the process exits)."""
    from chaosrunner.engine.signals import SIGNALS  # process-wide state, only for the CLI

    loop = asyncio.get_running_loop()
    with SIGNALS.forwarding(lambda name: loop.call_soon_threadsafe(run.interrupt, name)):
        return await run.execute()


def report_dir_for(name: str, options: RunOptions, clock: Clock) -> Path:
    if options.report_dir is not None:
        return options.report_dir
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return Path("reports") / f"{name}-{stamp}"

"""A run, phase by phase (DESIGN.md 4): plan -> before -> faults -> rollback -> after -> verdict.

Rollback is in a `finally` and cannot be skipped: signals only set the abort event
(see `interrupt`), never raise into the engine, and a second Ctrl-C is refused.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chaosrunner.drivers.base import DEADLINE_PARAM, DriverContext, Handle, Instance
from chaosrunner.engine.backends import Backends
from chaosrunner.engine.clock import Clock, RealClock
from chaosrunner.engine.context import EventLog, RunHooks, RunOptions, StopCondition
from chaosrunner.engine.guard import AbortDecision, BudgetGuard
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.observe import (
    SampleBook,
    check_steady,
    evaluate_criterion,
    sample_good,
)
from chaosrunner.engine.plan import Plan, PlannedFault, make_plan
from chaosrunner.engine.timeline import TimelineEvent, build_timeline
from chaosrunner.errors import (
    ChaosRunnerError,
    DriverError,
    Refused,
    SourceError,
    StateError,
    Verdict,
)
from chaosrunner.report.model import (
    AbortRecord,
    BudgetRecord,
    CheckResult,
    FaultRecord,
    Phase,
    RunReport,
    Sample,
    SLOInfo,
)
from chaosrunner.secrets import redact_data
from chaosrunner.slo.budget import WindowBurn
from chaosrunner.slo.sources.base import Reading, SLISource, SourceContext
from chaosrunner.spec.validate import ExperimentBundle
from chaosrunner.timestamps import iso

T = TypeVar("T")
# A fault's deadline is its planned end plus this: room for the runner's own rollback
# (retries included) before the watchdog, a Kubernetes sweep or the proxy steps in.
DEADLINE_MARGIN = 30.0


@dataclass
class Injection:
    """One fault in one instance: its handle and what happened to it."""

    planned: PlannedFault
    handle: Handle
    record: FaultRecord
    task: asyncio.Task[Handle] | None = None
    confirmed: bool = False
    reverted: bool = False
    deadline: float | None = None  # epoch seconds, as in the ledger


@dataclass
class Ticker:
    """The fault phase's sampling schedule."""

    interval: float
    next: float
    last: float

    def advance(self, now: float) -> None:
        self.last = now
        self.next += self.interval
        if self.next <= now:  # a long step overran several ticks: skip them, don't burst
            self.next = now + self.interval


@dataclass
class RunState:
    verdict: Verdict | None = None
    reason: str | None = None
    abort: AbortRecord | None = None
    signal: str | None = None
    injected_any: bool = False
    rollback_failed: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None
    recovered: bool | None = None


class Run:
    """Everything one run owns. `await Run(bundle, options).execute()` -> RunReport."""

    def __init__(self, bundle: ExperimentBundle, options: RunOptions,
                 clock: Clock | None = None, events: EventLog | None = None,
                 hooks: RunHooks | None = None, backends: Backends | None = None) -> None:
        self.bundle = bundle
        self.hooks = hooks or RunHooks()
        self.backends = backends or Backends()
        self.experiment = bundle.experiment
        self.options = options
        self.clock = clock or RealClock()
        self.events = events or EventLog(self.clock)
        self.run_id = new_run_id(self.experiment.name, self.clock)
        self.ledger = Ledger(options.state_dir)
        self.state = RunState()
        self.book = SampleBook()
        self.injections: list[Injection] = []
        self.sources: dict[str, SLISource] = {}
        self.phases: list[Phase] = []
        self.samples: list[Sample] = []
        self.checks: list[CheckResult] = []
        self.budget_before: dict[str, float | None] = {}
        self.budget_window: dict[str, WindowBurn | None] = {}  # its coverage of the window
        self.guard = BudgetGuard(self.experiment.abort.budget_limits, bundle.slos,
                                 no_data_grace=max(10.0, 3 * self.interval))
        self.plan: Plan | None = None
        self._step: asyncio.Future[None] | None = None  # the timeline step in flight
        self._halt_watcher: asyncio.Future[None] | None = None
        self.watchdog: Any = None  # engine.watchdog.Watchdog when options.watchdog
        self._heartbeat: asyncio.Future[None] | None = None
        self._stop_watcher: asyncio.Future[None] | None = None
        self._abort = asyncio.Event()  # abort, halt or signal: stop faults, roll back
        self._steps_stopped = asyncio.Event()  # rollback began: in-flight injects let go
        self._interrupted = asyncio.Event()  # signal only: also cut the after-phase short
        self._t0 = self.clock.monotonic()
        self._wall_start = time.time()
        self.started_at = iso(self.clock.now())

    @property
    def interval(self) -> float:
        return self.experiment.steady_state.interval

    # --- control from outside ------------------------------------------------------------

    def interrupt(self, signal_name: str) -> None:
        """Called from a signal handler: abort, roll back, exit 130/143. Never skips rollback."""
        if self.state.signal is not None:
            self.events.emit("interrupt", message=f"{signal_name} again: rollback is in "
                             "progress and will not be skipped")
            return
        self.state.signal = signal_name
        self.events.emit("interrupt", message=f"{signal_name}: aborting and rolling back")
        self._abort.set()
        self._interrupted.set()

    def request_abort(self, decision: AbortDecision | None, reason: str) -> None:
        if self._abort.is_set():
            return
        rates = dict(decision.burn_rates) if decision else {}
        self.state.abort = AbortRecord(
            reason=reason, at=iso(self.clock.now()), t=self.elapsed(),
            budget_consumed=decision.budget_consumed if decision else None,
            burn_rates=rates, slo=decision.slo if decision else None)
        self.events.emit("abort", message=reason)
        self._abort.set()

    @property
    def aborting(self) -> bool:
        return self._abort.is_set()

    def elapsed(self) -> float:
        return round(self.clock.monotonic() - self._t0, 3)

    # --- the run -------------------------------------------------------------------------

    async def execute(self) -> RunReport:
        watcher = self._halt_watcher = asyncio.ensure_future(self._watch_halt())
        try:
            await self._phases()
        finally:
            watcher.cancel()
            if self._stop_watcher is not None:
                self._stop_watcher.cancel()
            await self._close_sources()
            self.ledger.unregister_runner(self.run_id)
        return self.build_report()

    async def _phases(self) -> None:
        if not await self._plan_phase() or self.options.dry_run:
            return
        try:
            self.ledger.register_runner(self.run_id, self.experiment.name)
        except StateError as exc:
            self._refuse(str(exc))
            return
        if not await self._start_watchdog():
            return
        if self.hooks.stop_conditions:
            self._stop_watcher = asyncio.ensure_future(self._watch_stop_conditions())
        try:
            if await self._before_phase():
                await self._fault_phase()
        finally:
            try:
                await self._rollback_phase()
            finally:
                self._stop_watchdog()
        if self.state.injected_any and not self.state.rollback_failed \
                and self.state.signal is None:
            await self._after_phase()

    async def _start_watchdog(self) -> bool:
        """Start the watchdog before anything is injected; refuse the run when it cannot."""
        if not self.options.watchdog:
            return True
        from chaosrunner.engine.watchdog import HEARTBEAT_INTERVAL, Watchdog

        try:
            self.watchdog = await asyncio.to_thread(
                Watchdog.start, self.options.state_dir, self.run_id, self.experiment.name,
                self.started_at)
        except StateError as exc:
            return self._refuse(str(exc))
        self._heartbeat = asyncio.ensure_future(self._beat(self.watchdog, HEARTBEAT_INTERVAL))
        return True

    async def _beat(self, watchdog: Any, interval: float) -> None:
        while watchdog.beat():
            await asyncio.sleep(interval)
        self.request_abort(None, "the watchdog is gone (killed, or it took the faults back "
                           "because this runner stopped answering)")

    def _stop_watchdog(self) -> None:
        """The rollback is done (or failed and said so): the watchdog exits quietly."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.watchdog is not None:
            self.watchdog.finish()

    async def _plan_phase(self) -> bool:
        self._begin("plan")
        context = DriverContext(run_id=self.run_id, allow_exec=self.options.allow_exec,
                                base_dir=str(self.bundle.base_dir))
        try:
            self.plan = await asyncio.to_thread(
                make_plan, self.bundle, context, self.options.allow_production,
                self.options.allow_exec, self.options.seed, self.backends.drivers)
            await self._start_sources()
            await self._budget_gate()
            await self._stop_condition_gate()
        except (Refused, DriverError, SourceError) as exc:
            return self._refuse(str(exc))
        finally:
            self._end()
        self.events.emit("plan", message=f"{len(self.plan.faults)} fault(s)",
                         faults=self.plan.describe())
        return True

    def _refuse(self, reason: str) -> bool:
        self.state.verdict = Verdict.NOT_STARTED
        self.state.reason = reason
        self.events.emit("refused", message=reason)
        return False

    async def _start_sources(self) -> None:
        context = SourceContext(allow_exec=self.options.allow_exec,
                                base_dir=str(self.bundle.base_dir),
                                trace_headers=self.hooks.trace_headers)
        for name, slo in self.bundle.slos.items():
            self.sources[name] = self.backends.sources.build(name, slo,
                                                             self.bundle.steady_state, context)
            await self.sources[name].start()

    async def _close_sources(self) -> None:
        for source in self.sources.values():
            try:
                await source.close()
            except Exception as exc:  # noqa: BLE001 - closing must not mask the verdict
                self.events.emit("warning", message=f"closing an SLI source failed: {exc}")

    async def _budget_gate(self) -> None:
        from chaosrunner.errors import BudgetGateRefused

        gates = [g for g in (self.experiment.abort.min_budget_remaining,
                             self.options.min_budget_remaining) if g is not None]
        minimum = max(gates) if gates else None
        for name, source in self.sources.items():
            status = await source.budget_status()
            self.budget_before[name] = status.remaining if status else None
            self.budget_window[name] = status.period if status else None
        if minimum is None:
            return
        for name, remaining in self.budget_before.items():
            if remaining is not None and remaining < minimum:
                period = self.budget_window.get(name)
                over = f" ({period.coverage_text()})" if period and period.partial else ""
                raise BudgetGateRefused(
                    f"SLO {name!r} has {remaining:.1%} of its error budget left{over}, less "
                    f"than min_budget_remaining {minimum:.1%}; not starting")
        if all(v is None for v in self.budget_before.values()):
            self.events.emit("warning", message="min_budget_remaining not applied: no SLO "
                             "source can tell the remaining budget (probe SLIs cannot)")

    async def _before_phase(self) -> bool:
        self._begin("before")
        try:
            await self._observe("before", self.experiment.steady_state.before)
        finally:
            self._end()
        if self.aborting:
            self._stopped_early()
            return False
        results = self._check_all("before")
        failed = [r for r in results if not r.passed]
        if failed:
            detail = "; ".join(f"{r.slo}: {r.detail}" for r in failed)
            return self._refuse(f"steady state does not hold before any fault: {detail}")
        return True

    def _stopped_early(self) -> None:
        if self.state.signal is None and self.state.verdict is None:
            self.state.verdict = Verdict.ABORTED

    def _check_all(self, phase: str) -> list[CheckResult]:
        results = [check_steady(phase, name, slo, self.book.readings(phase, name))
                   for name, slo in self.bundle.slos.items()]
        self.checks.extend(results)
        for result in results:
            self.events.emit("check", message=f"{phase} {result.slo}: "
                             f"{'holds' if result.passed else 'FAILS'} ({result.detail})")
        return results

    async def _fault_phase(self) -> None:
        assert self.plan is not None
        self._begin("faults")
        try:
            await self._run_timeline(build_timeline(self.plan))
        finally:
            self._end()

    async def _run_timeline(self, timeline: list[TimelineEvent]) -> None:
        start = self.clock.monotonic()
        end = start + self.experiment.duration
        ticker = Ticker(self.interval, next=start + self.interval, last=start)
        while not self.aborting:
            now = self.clock.monotonic()
            if timeline and start + timeline[0].offset <= now:
                await self._step_while_sampling(self._apply(timeline.pop(0)), ticker, end)
                continue
            if now >= ticker.next or now >= end:
                await self._fault_sample(ticker, now)
            if now >= end:
                break
            wake = min(ticker.next, end, *(start + e.offset for e in timeline[:1]))
            await self.clock.sleep_until(wake, self._abort)

    async def _fault_sample(self, ticker: Ticker, now: float) -> None:
        await self._sample_round("faults", now - ticker.last, guard=True)
        ticker.advance(now)

    async def _step_while_sampling(self, step_coro: Awaitable[None], ticker: Ticker,
                                   end: float) -> None:
        """Run one timeline step (an inject, a timed revert) while sampling goes on, so
        the guard still watches, and can abort, while a slow driver call is in flight."""
        step = self._step = asyncio.ensure_future(step_coro)
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self._abort.wait())
        try:
            while not step.done() and not self.aborting:
                timeout = max(0.0, min(ticker.next, end) - self.clock.monotonic())
                await asyncio.wait([step, stopper], timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                now = self.clock.monotonic()
                if step.done() or self.aborting or now >= end:
                    break
                if now >= ticker.next:
                    await self._fault_sample(ticker, now)
        finally:
            stopper.cancel()
        if step.done():
            step.result()  # a bug in the step itself must not pass silently

    async def _apply(self, event: TimelineEvent) -> None:
        if event.kind == "inject":
            await self._inject(event.planned)
        else:
            await self._revert_fault(event.planned)

    async def _inject(self, planned: PlannedFault) -> None:
        for index, instance in enumerate(planned.instances):
            if self.aborting or self._steps_stopped.is_set():
                return
            try:
                injection = self._intent(planned, instance, index)
            except StateError as exc:  # never inject what the ledger cannot hold for recover
                self.request_abort(None, f"fault {planned.fault.name!r} not injected: {exc}")
                return
            injection.task = asyncio.ensure_future(asyncio.to_thread(
                planned.driver.inject, instance, planned.fault.action,
                self._driver_params(planned, injection), injection.handle.key))
            self.events.emit("inject", fault=planned.fault.name, action=planned.fault.action,
                             target=instance.name, key=injection.handle.key)
            try:
                handle = await self._preemptible(injection.task)
            except ChaosRunnerError as exc:
                return self._driver_failed(injection, exc)
            if handle is None:
                return  # aborted while injecting; rollback waits for the task
            self._confirm(injection, handle)

    def _intent(self, planned: PlannedFault, instance: Instance, index: int) -> Injection:
        key = f"{self.run_id}.{planned.fault.name}.{index}"
        handle = Handle.provisional(planned.fault.action, instance, planned.params, key)
        deadline = self._deadline(planned)
        self.ledger.record_intent(self.run_id, planned.fault.name, handle, deadline=deadline)
        record = FaultRecord(name=planned.fault.name, action=planned.fault.action,
                             targets=[instance.name], key=key, params=dict(planned.params))
        injection = Injection(planned, handle, record, deadline=deadline)
        self.injections.append(injection)
        self.state.injected_any = True
        return injection

    def _deadline(self, planned: PlannedFault) -> float:
        """Epoch seconds by which this fault must be out: its planned end plus a margin."""
        assert self.plan is not None
        end = planned.end if planned.end is not None else self.plan.duration
        return time.time() + max(0.0, end - planned.start) + DEADLINE_MARGIN

    def _driver_params(self, planned: PlannedFault, injection: Injection) -> dict[str, Any]:
        if not planned.driver.accepts_deadline:
            return planned.params
        return {**planned.params, DEADLINE_PARAM: injection.deadline}

    def _confirm(self, injection: Injection, handle: Handle) -> None:
        injection.handle, injection.confirmed, injection.task = handle, True, None
        injection.record.injected_at = iso(self.clock.now())
        self.events.emit("injected", fault=injection.planned.fault.name, key=handle.key,
                         target=handle.instance.name)
        try:
            self.ledger.record_injected(self.run_id, injection.planned.fault.name, handle)
        except StateError as exc:  # the intent (provisional handle) is there for recover
            self.request_abort(None, f"ledger failure after injecting {handle.key}: {exc}")

    def _driver_failed(self, injection: Injection, exc: Exception) -> None:
        injection.task = None
        injection.record.error = str(exc)
        self.request_abort(None, f"driver error in fault {injection.planned.fault.name!r}: "
                                 f"{exc}")

    async def _preemptible(self, task: asyncio.Future[T]) -> T | None:
        """The task's result, or None when an abort (or the rollback) came first; the
        task keeps running and the rollback settles it before reverting."""
        stoppers: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._abort.wait()),
            asyncio.ensure_future(self._steps_stopped.wait())]
        try:
            await asyncio.wait([task, *stoppers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for stopper in stoppers:
                stopper.cancel()
        if task.done():
            try:
                return task.result()
            except ChaosRunnerError:
                raise
            except Exception as exc:  # a driver bug is still a driver error
                raise DriverError(f"{type(exc).__name__}: {exc}") from exc
        return None

    async def _revert_fault(self, planned: PlannedFault) -> None:
        for injection in reversed(self.injections):
            if injection.planned is planned and not injection.reverted:
                await self._revert(injection)

    async def _rollback_phase(self) -> None:
        # Once the faults are being taken back there is nothing left for a halt to stop:
        # a halt now must not turn a run that passes into an aborted one.
        if self._halt_watcher is not None:
            self._halt_watcher.cancel()
        if self._stop_watcher is not None:
            self._stop_watcher.cancel()
        await self._finish_step()
        pending = [i for i in reversed(self.injections) if not i.reverted]
        # Extra load (load.http) stops first: it is what breaks the system.
        pending.sort(key=lambda i: not i.planned.driver.revert_first)
        if not pending:
            return
        self._begin("rollback")
        try:
            for injection in pending:
                await self._revert(injection)
        finally:
            self._end()
        if self.state.rollback_failed:
            self.events.emit("error", message="rollback incomplete: " + "; ".join(
                self.state.rollback_failed) + " -- run `chaosrunner recover`")

    async def _finish_step(self) -> None:
        """A timeline step still running (the phase ended mid-step) ends before rollback:
        an inject step returns at once (its driver call is settled per injection), a
        timed revert runs its bounded retries to the end."""
        if self._step is None or self._step.done():
            return
        self._steps_stopped.set()
        try:
            await self._step
        except Exception as exc:  # noqa: BLE001 - rollback goes on whatever the step did
            self.events.emit("warning", message=f"a timeline step failed: {exc}")

    async def _revert(self, injection: Injection) -> None:
        """Take one fault back, with retries; a failure is recorded, never raised."""
        settled = await self._settle_inflight(injection)
        planned, last_error = injection.planned, ""
        self.events.emit("reverting", fault=planned.fault.name, key=injection.handle.key,
                         target=injection.handle.instance.name)
        for attempt in range(1, self.options.revert_retries + 1):
            try:
                await asyncio.wait_for(asyncio.to_thread(planned.driver.revert, injection.handle),
                                       self.options.revert_timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported
                last_error = str(exc) or type(exc).__name__
                self.events.emit("warning", message=f"revert of {injection.handle.key} failed "
                                 f"(attempt {attempt}): {last_error}")
                await asyncio.sleep(min(2.0, 0.2 * attempt))
                continue
            if not settled:
                # The revert may have run before the hung inject lands: not taken back.
                last_error = (f"inject still running after {self.options.revert_timeout:g}s; "
                              "it may take effect after this revert")
                break
            injection.reverted = True
            injection.record.reverted_at = iso(self.clock.now())
            self._forget_failure(injection)
            self._record_done(injection)
            self.events.emit("revert", fault=planned.fault.name, action=planned.fault.action,
                             target=injection.handle.instance.name, key=injection.handle.key)
            return
        injection.record.error = f"revert failed: {last_error}"
        self.state.rollback_failed.append(f"{injection.handle.key}: {last_error}")

    def _forget_failure(self, injection: Injection) -> None:
        # A timed revert that failed is retried by the rollback; once that works, the
        # earlier failure must not make the run rollback_incomplete.
        key = injection.handle.key
        self.state.rollback_failed = [f for f in self.state.rollback_failed
                                      if not f.startswith(f"{key}: ")]
        if (injection.record.error or "").startswith("revert failed: "):
            injection.record.error = None

    def _record_done(self, injection: Injection) -> None:
        # The fault IS reverted: a ledger that cannot say so must not stop the rollback
        # of the others. Left open, the fault is only reverted again by `recover` (a no-op).
        try:
            self.ledger.record_done(self.run_id, injection.handle.key)
        except StateError as exc:
            self.events.emit("warning", message=f"{injection.handle.key} was reverted but the "
                             f"ledger could not record it ({exc}); `chaosrunner recover` "
                             "would revert it again, which changes nothing")

    async def _settle_inflight(self, injection: Injection) -> bool:
        """An injection still running in its thread must finish before it is reverted.
        False when it is still running after revert_timeout."""
        task = injection.task
        if task is None:
            return True
        try:
            handle = await asyncio.wait_for(asyncio.shield(task), self.options.revert_timeout)
            self._confirm(injection, handle)
        except Exception as exc:  # noqa: BLE001 - revert the provisional handle regardless
            injection.record.error = injection.record.error or str(exc) or type(exc).__name__
            if not task.done():
                return False
            injection.task = None
        return True

    async def _after_phase(self) -> None:
        self._begin("after")
        rollback_done = self.clock.monotonic()
        try:
            await self._observe("after", self.experiment.steady_state.after,
                                until_recovered=rollback_done)
        finally:
            self._end()
        if self.state.signal is None:
            self._check_all("after")

    async def _observe(self, phase: str, seconds: float,
                       until_recovered: float | None = None) -> None:
        """Sample every interval for `seconds`; with until_recovered, stop once recovered.

        The before-phase stops at any abort; the after-phase (which follows a rollback,
        often an abort's) only at a signal.
        """
        wake = self._abort if phase == "before" else self._interrupted
        start = self.clock.monotonic()
        deadline, last = start + seconds, start
        needed = max(1, min(3, int(seconds / self.interval)))
        streak, first_good = 0, None
        while not wake.is_set():
            if await self.clock.sleep_until(min(deadline, last + self.interval), wake):
                break
            now = self.clock.monotonic()
            good = await self._sample_round(phase, now - last, guard=False)
            last = now
            if until_recovered is not None:
                streak, first_good = (streak + 1, first_good or now) if good else (0, None)
                if streak >= needed and first_good is not None:
                    self.state.recovered = True
                    self.state.recovery_seconds = round(first_good - until_recovered, 3)
                    return
            if now >= deadline:
                break
        if until_recovered is not None:
            self.state.recovered = False

    async def _sample_round(self, phase: str, dt: float, guard: bool) -> bool:
        """Read every SLI once; feed the guard; True when every SLO held on this round."""
        names = list(self.sources)
        readings = await asyncio.gather(*(self._read(n, dt) for n in names))
        t = self.elapsed()
        shown: dict[str, tuple[float | None, bool | None]] = {}
        all_good = True
        for name, reading in zip(names, readings, strict=True):
            good = self._record_sample(phase, name, reading, t)
            shown[name] = (reading.value, good)
            all_good = all_good and bool(good)
            if guard:
                self._guard(name, reading, t, dt)
        burn = {k: v for n in self.guard.limits for k, v in self.guard.burn_rates(n, t).items()} \
            if guard else None
        self.events.emit("sample", phase=phase, slos=shown, burn=burn)
        return all_good

    async def _read(self, name: str, dt: float) -> Reading:
        try:
            return await self.sources[name].read(dt)
        except Exception as exc:  # noqa: BLE001 - a source bug must not skip the verdict
            note = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            if self.phases and self.phases[-1].name == "faults":
                self.request_abort(None, f"SLI {name!r} cannot be read: {note}")
            return Reading(value=None, note=note)

    def _record_sample(self, phase: str, name: str, reading: Reading, t: float) -> bool | None:
        slo = self.bundle.slos[name]
        good = sample_good(slo, reading)
        self.book.add(phase, name, reading)
        self.samples.append(Sample(time=iso(self.clock.now()), t=t, phase=phase, slo=name,
                                   value=reading.value, good=good, stats=dict(reading.stats),
                                   events_good=reading.good, events_total=reading.total))
        return good

    def _guard(self, name: str, reading: Reading, t: float, dt: float) -> None:
        decision = self.guard.check(name, reading, t, dt)
        if decision is not None:
            self.request_abort(decision, decision.reason)

    async def _watch_halt(self) -> None:
        while True:
            reason = await asyncio.to_thread(self.ledger.halt_reason, self._wall_start)
            if reason is not None:
                self.request_abort(None, f"halt: {reason}")
                return
            await asyncio.sleep(0.1)

    async def _stop_condition_gate(self) -> None:
        for condition in self.hooks.stop_conditions:
            try:
                reason = await condition.check()
            except SourceError as exc:
                raise Refused(f"cannot tell whether it is safe to start: {exc}") from None
            if reason is not None:
                raise Refused(f"{reason}; not starting")

    async def _watch_stop_conditions(self) -> None:
        """Abort when a stop condition says so, or when one cannot be read for as long
        as an SLI may give no data (the guard's no-data limit)."""
        unreadable_since: dict[int, float] = {}
        while True:
            await asyncio.sleep(self.interval)
            for index, condition in enumerate(self.hooks.stop_conditions):
                try:
                    reason = await self._stop_reason(condition, index, unreadable_since)
                except Exception as exc:  # noqa: BLE001 - a watcher that dies must not go unseen
                    reason = f"{condition.source}: {type(exc).__name__}: {exc}"
                if reason is not None:
                    self.request_abort(None, reason)
                    return

    async def _stop_reason(self, condition: StopCondition, index: int,
                           unreadable_since: dict[int, float]) -> str | None:
        try:
            reason = await condition.check()
        except SourceError as exc:
            since = unreadable_since.setdefault(index, self.clock.monotonic())
            if self.clock.monotonic() - since < self.guard.no_data_grace:
                return None
            return f"{condition.source} unreadable for {self.guard.no_data_grace:g}s: {exc}"
        unreadable_since.pop(index, None)
        return reason

    # --- bookkeeping ---------------------------------------------------------------------

    def _begin(self, name: str) -> None:
        self.phases.append(Phase(name=name, start=iso(self.clock.now())))
        self.events.emit("phase", phase=name)

    def _end(self) -> None:
        self.phases[-1].end = iso(self.clock.now())

    def verdict(self) -> Verdict:
        state = self.state
        if state.rollback_failed:
            return Verdict.ROLLBACK_INCOMPLETE
        if state.signal is not None:
            return Verdict.INTERRUPTED
        if state.verdict is not None:
            return state.verdict
        if state.abort is not None:
            return Verdict.ABORTED
        if self.options.dry_run:
            return Verdict.PASSED
        if state.recovered is False or not all(c.passed for c in self.criteria()):
            return Verdict.FAILED
        return Verdict.PASSED

    def criteria(self) -> list[Any]:
        if self.state.verdict is not None or not self.state.injected_any:
            return []
        return [evaluate_criterion(c, self.bundle.slos[c.slo],
                                   self.book.readings("faults", c.slo))
                for c in self.experiment.success_criteria]

    def budget_records(self) -> dict[str, BudgetRecord]:
        """Per SLO with a budget: consumed by this run's fault-phase samples (the guard's
        figure, computed once) and the remaining budget of the SLO window before the run,
        with how much of the window Prometheus held."""
        records: dict[str, BudgetRecord] = {}
        for name, slo in self.bundle.slos.items():
            meter = self.guard.meter(name)
            if slo.budget is None or meter is None:
                continue
            before = self.budget_before.get(name)
            period = self.budget_window.get(name)
            records[name] = BudgetRecord(
                name, round(meter.consumed, 9), before,
                None if before is None else before - meter.consumed,
                burn_rate=meter.mean_burn, consumed_over=round(meter.observed, 3),
                window=slo.window, window_held=None if period is None else period.held,
                partial=period is not None and period.partial)
        return records

    def build_report(self) -> RunReport:
        verdict = self.verdict()
        return redact_data(RunReport(
            verdict=verdict, exit_code=verdict.exit_code_for(self.state.signal),
            experiment=self.experiment.name, run_id=self.run_id, started_at=self.started_at,
            ended_at=iso(self.clock.now()), title=self.experiment.title,
            hypothesis=self.experiment.hypothesis, environment=self.experiment.environment,
            source=str(self.bundle.path), reason=self._reason(verdict), phases=self.phases,
            faults=[i.record for i in self.injections], samples=self.samples,
            criteria=self.criteria(), checks=self.checks, abort=self.state.abort,
            budget=self.budget_records(), recovery_seconds=self.state.recovery_seconds,
            slos=[SLOInfo(n, s.sli.kind, s.target, s.op, s.is_ratio, s.window,
                          s.sli.stat) for n, s in self.bundle.slos.items()],
            events=self.events.events, search=self._search()))

    def _search(self) -> dict[str, Any] | None:
        if self.experiment.search is None:
            return None
        from chaosrunner.load.search import search_outcome

        return search_outcome(self.bundle, [(i.record, i.handle) for i in self.injections],
                              self.state.abort, self.started_at)

    def _reason(self, verdict: Verdict) -> str | None:
        if self.state.reason:
            return self.state.reason
        if verdict is Verdict.ROLLBACK_INCOMPLETE:
            return "rollback incomplete: " + "; ".join(self.state.rollback_failed)
        if verdict is Verdict.INTERRUPTED:
            return f"interrupted by {self.state.signal}; rolled back"
        if self.state.abort is not None:
            return self.state.abort.reason
        if verdict is Verdict.FAILED and self.state.recovered is False:
            return "the SLOs did not hold again within steady_state.after"
        if verdict is Verdict.FAILED:
            return "success criteria not met"
        return None


def new_run_id(name: str, clock: Clock) -> str:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


async def run_with_signals(run: Run) -> RunReport:
    """Run with SIGINT/SIGTERM turned into an orderly abort and rollback
    (`chaosrunner.engine.signals`: the handlers stay until the process exits)."""
    from chaosrunner.engine.signals import SIGNALS

    loop = asyncio.get_running_loop()
    with SIGNALS.forwarding(lambda name: loop.call_soon_threadsafe(run.interrupt, name)):
        return await run.execute()


def report_dir_for(name: str, options: RunOptions, clock: Clock) -> Path:
    if options.report_dir is not None:
        return options.report_dir
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return Path("reports") / f"{name}-{stamp}"


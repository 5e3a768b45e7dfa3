"""Faults in and out: inject, confirm, preempt, settle, revert, record done, and the one
revert-with-retries policy (`revert_with_retries`) that `chaosrunner recover` and the
watchdog use too.

The ledger hears of every fault before its driver does (the provisional handle of
`intent`), so a fault whose runner dies is always found by `recover`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chaosrunner.drivers.base import DEADLINE_PARAM, Handle, Instance
from chaosrunner.engine.clock import Clock
from chaosrunner.engine.control import Control
from chaosrunner.engine.events import EventLog, Injected, Injecting, Reverted, Reverting, Warned
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.plan import Plan, PlannedFault
from chaosrunner.errors import ChaosRunnerError, DriverError, StateError
from chaosrunner.report.model import FaultRecord
from chaosrunner.timestamps import iso

T = TypeVar("T")
# A fault's deadline is its planned end plus this: room for the runner's own rollback
# (retries included) before the watchdog, a Kubernetes sweep or the proxy steps in.
DEADLINE_MARGIN = 30.0


@dataclass(frozen=True)
class RevertPolicy:
    """How hard a revert is tried: `attempts` calls, each cut off after `timeout`
    seconds, `backoff(n)` seconds apart."""

    attempts: int = 3
    timeout: float = 60.0

    @staticmethod
    def backoff(attempt: int) -> float:
        return min(2.0, 0.2 * attempt)


async def revert_with_retries(revert: Callable[[], None], policy: RevertPolicy,
                              on_failure: Callable[[int, str], None] | None = None
                              ) -> str | None:
    """Call `revert` (in a thread) until it works; None when it did, else the last error.

    Every exception counts as a failure, so a driver bug cannot stop a rollback.
    """
    error = "not attempted"
    for attempt in range(1, policy.attempts + 1):
        try:
            await asyncio.wait_for(asyncio.to_thread(revert), policy.timeout)
            return None
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported
            error = describe(exc)
            if on_failure is not None:
                on_failure(attempt, error)
        if attempt < policy.attempts:
            await asyncio.sleep(policy.backoff(attempt))
    return error


def describe(exc: BaseException) -> str:
    """An error as a user reads it: our own messages as they are, anything else typed."""
    if isinstance(exc, ChaosRunnerError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class Injection:
    """One fault in one instance: its handle and what happened to it."""

    planned: PlannedFault
    handle: Handle
    record: FaultRecord
    task: asyncio.Task[Handle] | None = None
    reverted: bool = False
    deadline: float | None = None  # epoch seconds, as in the ledger


class Faults:
    """Every injection of one run, and the rollback that takes them back."""

    def __init__(self, control: Control, ledger: Ledger, run_id: str, clock: Clock,
                 events: EventLog, policy: RevertPolicy) -> None:
        self.control = control
        self.ledger = ledger
        self.run_id = run_id
        self.clock = clock
        self.events = events
        self.policy = policy
        self.injections: list[Injection] = []

    # --- in ------------------------------------------------------------------------------

    async def inject(self, planned: PlannedFault, plan: Plan) -> None:
        """Inject into each instance in turn; stops at an abort or a driver error."""
        for index, instance in enumerate(planned.instances):
            if self.control.aborting or self.control.steps_stopped.is_set():
                return
            try:
                injection = self.intent(planned, instance, index, plan)
            except StateError as exc:  # never inject what the ledger cannot hold for recover
                self.control.request_abort(None, f"fault {planned.fault.name!r} not "
                                           f"injected: {exc}")
                return
            injection.task = asyncio.ensure_future(asyncio.to_thread(
                planned.driver.inject, instance, planned.fault.action,
                driver_params(planned, injection), injection.handle.key))
            self.events.emit(Injecting(planned.fault.name, planned.fault.action, instance.name,
                                       injection.handle.key))
            try:
                handle = await self.preemptible(injection.task)
            except ChaosRunnerError as exc:
                return self.driver_failed(injection, exc)
            if handle is None:
                return  # aborted while injecting; rollback waits for the task
            self.confirm(injection, handle)

    def intent(self, planned: PlannedFault, instance: Instance, index: int,
               plan: Plan) -> Injection:
        """Write the provisional handle to the ledger before the driver is called."""
        key = f"{self.run_id}.{planned.fault.name}.{index}"
        handle = Handle.provisional(planned.fault.action, instance, planned.params, key)
        deadline = fault_deadline(planned, plan)
        self.ledger.record_intent(self.run_id, planned.fault.name, handle, deadline=deadline)
        record = FaultRecord(name=planned.fault.name, action=planned.fault.action,
                             targets=[instance.name], key=key, params=dict(planned.params))
        injection = Injection(planned, handle, record, deadline=deadline)
        self.injections.append(injection)
        self.control.state.injected_any = True
        return injection

    def confirm(self, injection: Injection, handle: Handle) -> None:
        injection.handle, injection.task = handle, None
        injection.record.injected_at = iso(self.clock.now())
        self.events.emit(Injected(injection.planned.fault.name, handle.key,
                                  handle.instance.name))
        try:
            self.ledger.record_injected(self.run_id, injection.planned.fault.name, handle)
        except StateError as exc:  # the intent (provisional handle) is there for recover
            self.control.request_abort(None, f"ledger failure after injecting {handle.key}: "
                                       f"{exc}")

    def driver_failed(self, injection: Injection, exc: Exception) -> None:
        injection.task = None
        injection.record.error = str(exc)
        self.control.request_abort(None, f"driver error in fault "
                                   f"{injection.planned.fault.name!r}: {exc}")

    async def preemptible(self, task: asyncio.Future[T]) -> T | None:
        """The task's result, or None when an abort (or the rollback) came first; the
        task keeps running and the rollback settles it before reverting."""
        stoppers: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self.control.abort_event.wait()),
            asyncio.ensure_future(self.control.steps_stopped.wait())]
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

    # --- out -----------------------------------------------------------------------------

    async def revert_planned(self, planned: PlannedFault) -> None:
        """The timed revert of one fault (`for:` or the driver's own revert_after)."""
        for injection in reversed(self.injections):
            if injection.planned is planned and not injection.reverted:
                await self.revert(injection)

    def pending(self) -> list[Injection]:
        """What the rollback must take back, newest first; extra load (load.http) first
        of all: it is what breaks the system."""
        pending = [i for i in reversed(self.injections) if not i.reverted]
        pending.sort(key=lambda i: not i.planned.driver.revert_first)
        return pending

    async def revert(self, injection: Injection) -> None:
        """Take one fault back, with retries; a failure is recorded, never raised."""
        settled = await self.settle_inflight(injection)
        planned, key = injection.planned, injection.handle.key
        self.events.emit(Reverting(planned.fault.name, key, injection.handle.instance.name))

        def warn(attempt: int, error: str) -> None:
            self.events.emit(Warned(f"revert of {key} failed (attempt {attempt}): {error}"))

        error = await revert_with_retries(lambda: planned.driver.revert(injection.handle),
                                          self.policy, warn)
        if error is None and not settled:
            # The revert may have run before the hung inject lands: not taken back.
            error = (f"inject still running after {self.policy.timeout:g}s; it may take "
                     "effect after this revert")
        if error is not None:
            injection.record.error = f"revert failed: {error}"
            self.control.state.rollback_failed.append(f"{key}: {error}")
            return
        injection.reverted = True
        injection.record.reverted_at = iso(self.clock.now())
        self.forget_failure(injection)
        self.record_done(injection)
        self.events.emit(Reverted(planned.fault.name, planned.fault.action,
                                  injection.handle.instance.name, key))

    def forget_failure(self, injection: Injection) -> None:
        # A timed revert that failed is retried by the rollback; once that works, the
        # earlier failure must not make the run rollback_incomplete.
        key = injection.handle.key
        state = self.control.state
        state.rollback_failed = [f for f in state.rollback_failed if not f.startswith(f"{key}: ")]
        if (injection.record.error or "").startswith("revert failed: "):
            injection.record.error = None

    def record_done(self, injection: Injection) -> None:
        # The fault IS reverted: a ledger that cannot say so must not stop the rollback
        # of the others. Left open, the fault is only reverted again by `recover` (a no-op).
        try:
            self.ledger.record_done(self.run_id, injection.handle.key)
        except StateError as exc:
            self.events.emit(Warned(f"{injection.handle.key} was reverted but the ledger could "
                                    f"not record it ({exc}); `chaosrunner recover` would "
                                    "revert it again, which changes nothing"))

    async def settle_inflight(self, injection: Injection) -> bool:
        """An injection still running in its thread must finish before it is reverted.
        False when it is still running after the revert timeout."""
        task = injection.task
        if task is None:
            return True
        try:
            handle = await asyncio.wait_for(asyncio.shield(task), self.policy.timeout)
            self.confirm(injection, handle)
        except Exception as exc:  # noqa: BLE001 - revert the provisional handle regardless
            injection.record.error = injection.record.error or str(exc) or type(exc).__name__
            if not task.done():
                return False
            injection.task = None
        return True


def fault_deadline(planned: PlannedFault, plan: Plan) -> float:
    """Epoch seconds by which this fault must be out: its planned end plus a margin."""
    end = planned.end if planned.end is not None else plan.duration
    return time.time() + max(0.0, end - planned.start) + DEADLINE_MARGIN


def driver_params(planned: PlannedFault, injection: Injection) -> dict[str, Any]:
    """The fault's params, with its deadline for drivers whose backend can enforce it."""
    if not planned.driver.accepts_deadline:
        return planned.params
    return {**planned.params, DEADLINE_PARAM: injection.deadline}

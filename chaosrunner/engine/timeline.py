"""The fault phase's timeline: when each fault goes in and, if timed, when it comes out,
and `FaultPhase`, which plays it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from chaosrunner.engine.clock import Clock
from chaosrunner.engine.control import Control
from chaosrunner.engine.faults import Faults
from chaosrunner.engine.plan import Plan, PlannedFault
from chaosrunner.engine.sampling import Sampler, Ticker


@dataclass(frozen=True)
class TimelineEvent:
    offset: float
    kind: Literal["inject", "revert"]
    planned: PlannedFault


def build_timeline(plan: Plan) -> list[TimelineEvent]:
    """Injections at `at`, timed reverts at `at + for`; reverts first when times tie,
    so a fault that ends as another starts never overlaps it."""
    events: list[TimelineEvent] = []
    for planned in plan.faults:
        events.append(TimelineEvent(planned.start, "inject", planned))
        if planned.end is not None and planned.end < plan.duration:
            events.append(TimelineEvent(planned.end, "revert", planned))
    return sorted(events, key=lambda e: (e.offset, 0 if e.kind == "revert" else 1))


class FaultPhase:
    """Plays the timeline while the SLIs are sampled every interval, so the guard still
    watches, and can abort, while a slow driver call is in flight."""

    def __init__(self, plan: Plan, faults: Faults, sampler: Sampler, control: Control,
                 clock: Clock) -> None:
        self.plan = plan
        self.faults = faults
        self.sampler = sampler
        self.control = control
        self.clock = clock
        self.step: asyncio.Future[None] | None = None  # the timeline step in flight

    async def play(self, timeline: list[TimelineEvent]) -> None:
        start = self.clock.monotonic()
        end = start + self.plan.duration
        interval = self.sampler.interval
        ticker = Ticker(interval, next=start + interval, last=start)
        while not self.control.aborting:
            now = self.clock.monotonic()
            if timeline and start + timeline[0].offset <= now:
                await self._step_while_sampling(self._apply(timeline.pop(0)), ticker, end)
                continue
            if now >= ticker.next or now >= end:
                await self._sample(ticker, now)
            if now >= end:
                break
            wake = min(ticker.next, end, *(start + e.offset for e in timeline[:1]))
            await self.clock.sleep_until(wake, self.control.abort_event)

    async def _sample(self, ticker: Ticker, now: float) -> None:
        await self.sampler.sample_round("faults", now - ticker.last, guard=True)
        ticker.advance(now)

    async def _step_while_sampling(self, step_coro: Awaitable[None], ticker: Ticker,
                                   end: float) -> None:
        step = self.step = asyncio.ensure_future(step_coro)
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.control.abort_event.wait())
        try:
            while not step.done() and not self.control.aborting:
                timeout = max(0.0, min(ticker.next, end) - self.clock.monotonic())
                await asyncio.wait([step, stopper], timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                now = self.clock.monotonic()
                if step.done() or self.control.aborting or now >= end:
                    break
                if now >= ticker.next:
                    await self._sample(ticker, now)
        finally:
            stopper.cancel()
        if step.done():
            step.result()  # a bug in the step itself must not pass silently

    async def _apply(self, event: TimelineEvent) -> None:
        if event.kind == "inject":
            await self.faults.inject(event.planned, self.plan)
        else:
            await self.faults.revert_planned(event.planned)

    async def finish_step(self, warn: Callable[[str], object]) -> None:
        """A timeline step still running (the phase ended mid-step) ends before rollback:
        an inject step returns at once (its driver call is settled per injection), a
        timed revert runs its bounded retries to the end."""
        if self.step is None or self.step.done():
            return
        self.control.steps_stopped.set()
        try:
            await self.step
        except Exception as exc:  # noqa: BLE001 - rollback goes on whatever the step did
            warn(f"a timeline step failed: {exc}")

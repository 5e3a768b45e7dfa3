"""Reading the SLIs: the sources' lifecycle, the sample round (read every SLI once,
record, feed the guard), the steady-state observation of the before- and after-phase,
and the fault phase's sampling schedule (`Ticker`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chaosrunner.engine.clock import Clock
from chaosrunner.engine.control import Control
from chaosrunner.engine.events import Checked, EventLog, Sampled, Warned
from chaosrunner.engine.guard import BudgetGuard
from chaosrunner.engine.observe import SampleBook, check_steady, sample_good
from chaosrunner.errors import BudgetGateRefused, SourceError
from chaosrunner.report.model import CheckResult, Sample
from chaosrunner.slo.budget import WindowBurn
from chaosrunner.slo.sources.base import (
    Reading,
    SLISource,
    SourceContext,
    SourceRegistry,
)
from chaosrunner.spec.validate import ExperimentBundle
from chaosrunner.timestamps import iso


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


class Sampler:
    """The SLI sources of one run and every sample they gave."""

    def __init__(self, bundle: ExperimentBundle, control: Control, guard: BudgetGuard,
                 clock: Clock, events: EventLog) -> None:
        self.bundle = bundle
        self.control = control
        self.guard = guard
        self.clock = clock
        self.events = events
        self.interval = bundle.experiment.steady_state.interval
        self.sources: dict[str, SLISource] = {}
        self.book = SampleBook()
        self.samples: list[Sample] = []
        self.in_fault_phase = False  # an unreadable SLI aborts only while faults are in
        self.recovered_from = 0  # the after-phase round where the recovery streak began
        self.checks: list[CheckResult] = []
        self.budget_before: dict[str, float | None] = {}
        self.budget_window: dict[str, WindowBurn | None] = {}  # its coverage of the window

    async def start(self, registry: SourceRegistry, context: SourceContext) -> None:
        for name, slo in self.bundle.slos.items():
            self.sources[name] = registry.build(name, slo, self.bundle.steady_state, context)
            await self.sources[name].start()

    async def close(self) -> None:
        for source in self.sources.values():
            try:
                await source.close()
            except Exception as exc:  # noqa: BLE001 - closing must not mask the verdict
                self.events.emit(Warned(f"closing an SLI source failed: {exc}"))

    async def budget_gate(self, *minimums: float | None) -> None:
        """Read each SLO's remaining error budget (for the report); raise
        BudgetGateRefused when one has less left than the largest of `minimums`."""
        for name, source in self.sources.items():
            status = await source.budget_status()
            self.budget_before[name] = status.remaining if status else None
            self.budget_window[name] = status.period if status else None
        gates = [m for m in minimums if m is not None]
        if not gates:
            return
        minimum = max(gates)
        for name, remaining in self.budget_before.items():
            if remaining is not None and remaining < minimum:
                period = self.budget_window.get(name)
                over = f" ({period.coverage_text()})" if period and period.partial else ""
                raise BudgetGateRefused(
                    f"SLO {name!r} has {remaining:.1%} of its error budget left{over}, less "
                    f"than min_budget_remaining {minimum:.1%}; not starting")
        if all(v is None for v in self.budget_before.values()):
            self.events.emit(Warned("min_budget_remaining not applied: no SLO source can tell "
                                    "the remaining budget (probe SLIs cannot)"))

    def check_all(self, phase: str) -> list[CheckResult]:
        """The steady-state check of every SLO over a phase (the after-phase: from the
        recovery streak on), recorded and told."""
        first = self.recovered_from if phase == "after" else 0
        results = [check_steady(phase, name, slo, self.book.readings(phase, name)[first:])
                   for name, slo in self.bundle.slos.items()]
        self.checks.extend(results)
        for result in results:
            self.events.emit(Checked(f"{phase} {result.slo}: "
                                     f"{'holds' if result.passed else 'FAILS'} ({result.detail})"))
        return results

    async def observe(self, phase: str, seconds: float, wake: asyncio.Event,
                      until_recovered: float | None = None) -> None:
        """Sample every interval for `seconds` or until `wake`; with until_recovered (the
        monotonic time the rollback ended), stop once recovered and record when.

        Recovered means every SLO held on `needed` rounds in a row (up to three); the
        after check then judges those rounds (`recovered_from`), not the slow ones
        before them: one rule for the verdict and every report (docs/design.md).
        """
        state = self.control.state
        start = self.clock.monotonic()
        deadline, last = start + seconds, start
        needed = max(1, min(3, int(seconds / self.interval)))
        streak, first_good, rounds = 0, None, 0
        while not wake.is_set():
            if await self.clock.sleep_until(min(deadline, last + self.interval), wake):
                break
            now = self.clock.monotonic()
            good = await self.sample_round(phase, now - last, guard=False)
            last, rounds = now, rounds + 1
            if until_recovered is not None:
                streak, first_good = (streak + 1, first_good or now) if good else (0, None)
                if streak == 1:
                    self.recovered_from = rounds - 1
                if streak >= needed and first_good is not None:
                    state.recovered = True
                    state.recovery_seconds = round(first_good - until_recovered, 3)
                    return
            if now >= deadline:
                break
        if until_recovered is not None:
            state.recovered, self.recovered_from = False, 0

    async def sample_round(self, phase: str, dt: float, guard: bool) -> bool:
        """Read every SLI once; feed the guard; True when every SLO held on this round."""
        names = list(self.sources)
        readings = await asyncio.gather(*(self.read(n, dt) for n in names))
        t = self.control.elapsed()
        shown: dict[str, tuple[float | None, bool | None]] = {}
        all_good = True
        for name, reading in zip(names, readings, strict=True):
            good = self.record(phase, name, reading, t)
            shown[name] = (reading.value, good)
            all_good = all_good and bool(good)
            if guard:
                decision = self.guard.check(name, reading, t, dt)
                if decision is not None:
                    self.control.request_abort(decision, decision.reason)
        # The rates the guard judged this round on (computed once: a hot path).
        burn = {k: v for n in self.guard.limits for k, v in self.guard.rates[n].items()} \
            if guard else None
        self.events.emit(Sampled(phase, shown, burn))
        return all_good

    async def read(self, name: str, dt: float) -> Reading:
        try:
            return await self.sources[name].read(dt)
        except Exception as exc:  # noqa: BLE001 - a source bug must not skip the verdict
            note = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            if self.in_fault_phase:
                self.control.request_abort(None, f"SLI {name!r} cannot be read: {note}")
            return Reading(value=None, note=note)

    def record(self, phase: str, name: str, reading: Reading, t: float) -> bool | None:
        slo = self.bundle.slos[name]
        good = sample_good(slo, reading)
        self.book.add(phase, name, reading)
        self.samples.append(Sample(time=iso(self.clock.now()), t=t, phase=phase, slo=name,
                                   value=reading.value, good=good, stats=dict(reading.stats),
                                   events_good=reading.good, events_total=reading.total))
        return good

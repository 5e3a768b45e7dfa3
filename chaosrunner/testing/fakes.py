"""Fakes for engine tests: a clock that never sleeps, a driver and an SLI source over a
shared in-memory `World`, so that an injected fault really changes what the SLIs read.

    world = World(["api-1", "api-2", "api-3", "api-4"])
    backends = fake_backends(world)      # fake.* actions and http SLIs run on the world
    bundle = load_runnable(path, drivers=backends.drivers)
    report = await Run(bundle, options, clock=FakeClock(), backends=backends).execute()
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from chaosrunner.app.load import load_runnable
from chaosrunner.drivers.base import (
    JSON,
    BaseDriver,
    DriverContext,
    DriverRegistry,
    Handle,
    Instance,
    ParamError,
)
from chaosrunner.engine.backends import Backends
from chaosrunner.engine.runner import Run
from chaosrunner.errors import DriverError, SourceError, TargetNotFound
from chaosrunner.slo.budget import WindowBurn
from chaosrunner.slo.sources.base import (
    BaseSource,
    BudgetStatus,
    Reading,
    SourceContext,
    SourceRegistry,
)
from chaosrunner.spec.models import SLO, SteadyState

if TYPE_CHECKING:
    from chaosrunner.engine.clock import Clock
    from chaosrunner.engine.context import RunOptions


class FakeClock:
    """Virtual time: `sleep_until` jumps straight to the deadline.

    `on_tick` callbacks run whenever time moves, so a test can change the world at a
    given virtual second ("at t=5 the service goes down").
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.t = 0.0
        self.start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.on_tick: list[Callable[[float], None]] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds
        for callback in list(self.on_tick):
            callback(self.t)

    async def sleep_until(self, deadline: float, wake: asyncio.Event) -> bool:
        await asyncio.sleep(0)
        if wake.is_set():
            return True
        if deadline > self.t:
            self.advance(deadline - self.t)
        await asyncio.sleep(0)
        return wake.is_set()


@dataclass
class World:
    """Instances and their state; what the fake driver changes and the fake source reads."""

    names: list[str]
    down: set[str] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)
    inject_delay: float = 0.0
    inject_gate: threading.Event | None = None  # inject blocks until set (a hung backend)
    fail_inject: int = 0
    fail_revert: int = 0
    external_availability: float | None = None
    budget_remaining: float | None = None  # what budget_status() reports; None: unknown
    budget_held: float | None = None  # seconds of the SLO window it covers; None: unknown
    lock: threading.Lock = field(default_factory=threading.Lock)

    def availability(self) -> float:
        if self.external_availability is not None:
            return self.external_availability
        return 1.0 - len(self.down) / len(self.names) if self.names else 0.0


class FakeDriver(BaseDriver):
    """`fake.down` takes instances down; revert brings them back. Knobs on the World
    make inject slow or failing and revert failing, to test the engine's paths."""

    name: ClassVar[str] = "fake"
    actions: ClassVar[frozenset[str]] = frozenset({"down", "noop"})

    def __init__(self, world: World | None = None, context: DriverContext | None = None) -> None:
        super().__init__(context)
        self.world = world or World(["fake-1", "fake-2", "fake-3", "fake-4"])

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        self.check_action(action)
        unknown = set(params) - {"restart_after", "note"}
        if unknown:
            raise ParamError(("with", sorted(unknown)[0]), "unknown parameter")
        if "prefix" not in target:
            raise ParamError(("target",), "fake targets need {prefix: NAME}")
        return dict(params)

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        prefix = str(target["prefix"])
        return [Instance("fake", name, name) for name in self.world.names
                if name.startswith(prefix) and name not in self.world.down]

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        if self.world.inject_delay:
            time.sleep(self.world.inject_delay)
        if self.world.inject_gate is not None:
            self.world.inject_gate.wait(timeout=30)
        with self.world.lock:
            if self.world.fail_inject:
                self.world.fail_inject -= 1
                raise DriverError(f"fake inject into {instance.name} failed")
            if instance.name not in self.world.names:
                raise TargetNotFound(f"{instance.name} vanished")
            if action.endswith("down"):
                self.world.down.add(instance.name)
            self.world.log.append(("inject", key))
        return Handle(action, instance, key, dict(params), {"was_up": True})

    def revert(self, handle: Handle) -> None:
        with self.world.lock:
            if self.world.fail_revert:
                self.world.fail_revert -= 1
                raise DriverError(f"fake revert of {handle.instance.name} failed")
            self.world.down.discard(handle.instance.name)
            self.world.log.append(("revert", handle.key))


class FakeSource(BaseSource):
    """Reads the World: availability = share of instances up, as 1,000 events a sample."""

    def __init__(self, name: str, slo: SLO, steady_state: SteadyState | None,
                 context: SourceContext, world: World,
                 value: Callable[[World], float | None] | None = None,
                 fail: Callable[[], bool] | None = None) -> None:
        super().__init__(name, slo, steady_state, context)
        self.world = world
        self.value = value
        self.fail = fail

    @classmethod
    def factory(cls, world: World, value: Callable[[World], float | None] | None = None,
                fail: Callable[[], bool] | None = None) -> Any:
        def build(name: str, slo: SLO, steady: SteadyState | None,
                  context: SourceContext) -> FakeSource:
            return cls(name, slo, steady, context, world, value, fail)

        return build

    async def budget_status(self) -> BudgetStatus | None:
        if self.world.budget_remaining is None:
            return None
        period = WindowBurn(self.slo.window, 1.0 - self.world.budget_remaining,
                            self.world.budget_held)
        return BudgetStatus(sli=self.world.availability(), remaining=self.world.budget_remaining,
                            period=period)

    async def read(self, interval: float) -> Reading:
        if self.fail is not None and self.fail():
            raise SourceError(f"fake source {self.name} is down")
        if self.value is not None:
            value = self.value(self.world)
            return Reading(value=value)
        availability = self.world.availability()
        total = 1000.0
        good = round(availability * total)
        latency = 0.05 if availability >= 1.0 else 0.3
        stats = {"availability": good / total, "p99": latency, "max": latency}
        return Reading(value=stats.get(self.slo.sli.stat or "availability", good / total),
                       good=good, total=total, stats=stats, latencies=(latency,) * 10)


def fake_backends(world: World, value: Callable[[World], float | None] | None = None,
                  fail: Callable[[], bool] | None = None) -> Backends:
    """Backends where `fake.*` actions and `http` SLIs run on fakes over `world` (every
    other driver and source is the production one)."""
    return Backends(drivers=DriverRegistry([FakeDriver(world)]),
                    sources=SourceRegistry({"http": FakeSource.factory(world, value, fail)}))


def fake_drivers(world: World) -> DriverRegistry:
    """The production drivers and a `FakeDriver` over `world` (for loading files that
    use `fake.*` actions)."""
    return DriverRegistry([FakeDriver(world)])


def fake_run(path: Path, world: World, options: RunOptions, clock: Clock | None = None,
             value: Callable[[World], float | None] | None = None,
             fail: Callable[[], bool] | None = None) -> Run:
    """A `Run` of the experiment file at `path` on fakes over `world`, on a virtual clock
    unless `clock` says otherwise."""
    backends = fake_backends(world, value, fail)
    bundle = load_runnable(path, options.variables, backends.drivers)
    return Run(bundle, options, clock=clock or FakeClock(), backends=backends)

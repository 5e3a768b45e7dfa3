"""The SLI-source interface, its readings, and the registry.

A source is started once per run, read once per sampling interval, and closed at the end:

    source = build_source(name, slo, steady_state, context)
    await source.start()
    reading = await source.read(interval)   # the SLI over (about) the last interval
    await source.close()

A reading with `value is None` means "no data" (an empty PromQL result, no probe answer):
its own state in the report, never a silent pass. Sources raise `SourceError` when they
cannot read at all (server down); the engine turns that into an abort with rollback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chaosrunner.slo.budget import WindowBurn
from chaosrunner.spec.models import SLO, SteadyState


@dataclass(frozen=True)
class SourceContext:
    allow_exec: bool = False
    base_dir: str = "."
    query_timeout: float = 5.0
    retries: int = 2
    # Evaluate window queries at this Unix time instead of now (`budget --at`).
    at: float | None = None
    # Objects the sources of one run share (one probe's traffic read by several SLOs).
    shared: dict[Any, Any] = field(default_factory=dict, compare=False, hash=False)
    # Headers that put probe requests into the run's trace (W3C traceparent).
    trace_headers: Callable[[], Mapping[str, str]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Reading:
    """One sample of one SLI.

    `good`/`total` are event counts when the source has them (probe traffic, ratio
    queries); the budget math weights by them. `stats` holds every statistic the source
    knows (availability, p50 ... for the probe), `latencies` the raw probe latencies, so a
    phase-wide percentile is computed from data, not averaged from percentiles.
    """

    value: float | None
    good: float | None = None
    total: float | None = None
    stats: Mapping[str, float] = field(default_factory=dict)
    latencies: tuple[float, ...] = ()
    note: str | None = None

    @property
    def no_data(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class BudgetStatus:
    """Error budget over the SLO window, when the source can query it.

    `period` is the burn over the SLO window with the share of it the server holds
    (`remaining` is 1 - its burn: partial when `period.partial`); `windows` the burn rates
    over the alert windows ("5m" ... "3d") with their coverage; `burn_rates` the bare rates.
    """

    sli: float | None
    remaining: float | None
    burn_rates: Mapping[str, float | None] = field(default_factory=dict)
    period: WindowBurn | None = None
    windows: Mapping[str, WindowBurn] = field(default_factory=dict)


@runtime_checkable
class SLISource(Protocol):
    async def start(self) -> None: ...

    async def read(self, interval: float) -> Reading: ...

    async def close(self) -> None: ...

    async def budget_status(self) -> BudgetStatus | None:
        """Remaining budget over the SLO window, or None when unknown."""
        ...


class BaseSource:
    """Defaults for sources with nothing to start or close and no window view."""

    def __init__(self, name: str, slo: SLO, steady_state: SteadyState | None,
                 context: SourceContext) -> None:
        self.name = name
        self.slo = slo
        self.steady_state = steady_state
        self.context = context

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def budget_status(self) -> BudgetStatus | None:
        return None


SourceFactory = Callable[[str, SLO, "SteadyState | None", SourceContext], SLISource]

# sli kind -> "module:factory"; imported lazily.
SOURCES: dict[str, str] = {
    "http": "chaosrunner.slo.sources.http_probe:HttpProbeSource",
    "promql": "chaosrunner.slo.sources.prometheus:PrometheusSource",
    "prometheus": "chaosrunner.slo.sources.prometheus:PrometheusSource",
    "ratio": "chaosrunner.slo.sources.prometheus:PrometheusSource",
    "sloth": "chaosrunner.slo.sources.prometheus:PrometheusSource",
    "command": "chaosrunner.slo.sources.command:CommandSource",
    "ctk_probe": "chaosrunner.slo.sources.ctk_probe:CtkProbeSource",
}


def build_source(name: str, slo: SLO, steady_state: SteadyState | None,
                 context: SourceContext) -> SLISource:
    """The production source of an SLO's SLI kind."""
    module_name, _, attr = SOURCES[slo.sli.kind].partition(":")
    factory: Any = getattr(importlib.import_module(module_name), attr)
    source: SLISource = factory(name, slo, steady_state, context)
    return source


class SourceRegistry:
    """Which source reads an SLI kind: the production sources, and any `factories`
    handed in (tests hand a run their fake source this way, like the clock)."""

    def __init__(self, factories: Mapping[str, SourceFactory] | None = None) -> None:
        self.factories = dict(factories or {})

    def build(self, name: str, slo: SLO, steady_state: SteadyState | None,
              context: SourceContext) -> SLISource:
        factory = self.factories.get(slo.sli.kind)
        if factory is not None:
            return factory(name, slo, steady_state, context)
        return build_source(name, slo, steady_state, context)

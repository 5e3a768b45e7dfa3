"""The abort guard: after every sample, budget consumed and multi-window burn rates.

Only fault-phase samples count: the question is what *this experiment* burns, and a
window that reached back into the calm before-phase would dilute the first bad samples
and delay the abort. Each window therefore covers min(window, time since faults began),
and says so (`WindowBurn.held`). The arithmetic is `slo.budget`'s (`BudgetMeter`,
`all_above`), the same as `chaosrunner budget`'s; every SLO with a budget is metered, so
the report's "consumed by this run" is the guard's figure, computed once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaosrunner.slo.budget import BadShare, BudgetMeter, WindowBurn, all_above
from chaosrunner.slo.sources.base import Reading
from chaosrunner.spec.models import SLO, ErrorBudgetAbort
from chaosrunner.spec.units import format_duration


def bad_share(slo: SLO, reading: Reading, t: float, dt: float) -> BadShare | None:
    """Turn a reading into bad/total events; None when the reading has no data."""
    if reading.value is None:
        return None
    if slo.is_ratio and reading.good is not None and reading.total is not None:
        if reading.total <= 0:
            return None
        return BadShare(t, dt, max(0.0, reading.total - reading.good), reading.total)
    if slo.is_ratio:
        return BadShare(t, dt, min(1.0, max(0.0, 1.0 - reading.value)), 1.0)
    return BadShare(t, dt, 0.0 if slo.holds(reading.value) else 1.0, 1.0)


@dataclass(frozen=True)
class AbortDecision:
    reason: str
    slo: str
    budget_consumed: float
    burn_rates: Mapping[str, float | None]


@dataclass
class SLOTrack:
    """Fault-phase history of one SLO."""

    slo: SLO
    meter: BudgetMeter
    no_data_since: float | None = None


class BudgetGuard:
    """Checks every sample of the guarded SLOs against the experiment's abort limits.

    >>> guard = BudgetGuard(limits, slos)                 # doctest: +SKIP
    >>> guard.check("checkout_probe", reading, t=3.0, dt=0.25)   # doctest: +SKIP
    AbortDecision(reason='burn rate 100.0x over 1m and 100.0x over 5m ...', ...)
    """

    def __init__(self, limits: Sequence[ErrorBudgetAbort], slos: Mapping[str, SLO],
                 no_data_grace: float = 10.0) -> None:
        self.limits = {limit.slo: limit for limit in limits}
        self.tracks = {
            name: SLOTrack(slo, BudgetMeter(slo.budget or 1e-9, slo.window,
                                            horizon=self._horizon(name)))
            for name, slo in slos.items() if name in self.limits or slo.budget is not None}
        self.no_data_grace = no_data_grace
        # Each guarded SLO's burn rates as of its latest check: the sample's own figures.
        self.rates: dict[str, dict[str, float | None]] = {}

    def _horizon(self, name: str) -> float:
        limit = self.limits.get(name)
        return max(limit.windows) if limit is not None else 0.0

    def check(self, name: str, reading: Reading, t: float, dt: float) -> AbortDecision | None:
        """Record one fault-phase sample; an AbortDecision when a limit is crossed."""
        track = self.tracks.get(name)
        if track is None:
            return None
        share = bad_share(track.slo, reading, t, dt)
        if share is not None:
            track.no_data_since = None
            track.meter.add(share)
        limit = self.limits.get(name)
        if limit is None:
            return None
        rates = self.rates[name] = self.burn_rates(name, t)
        if share is None:
            return self._check_no_data(name, track, t, rates)
        return self._judge(name, track, limit, rates)

    def windows(self, name: str, t: float) -> dict[str, WindowBurn]:
        """The burn rate over each of the SLO's abort windows, with its coverage."""
        limit, track = self.limits[name], self.tracks[name]
        return {format_duration(w): track.meter.burn(w, t) for w in limit.windows}

    def burn_rates(self, name: str, t: float) -> dict[str, float | None]:
        return {window: figure.burn for window, figure in self.windows(name, t).items()}

    def meter(self, name: str) -> BudgetMeter | None:
        """The SLO's meter (None when it has no budget and no limit)."""
        track = self.tracks.get(name)
        return None if track is None else track.meter

    def _judge(self, name: str, track: SLOTrack, limit: ErrorBudgetAbort,
               rates: dict[str, float | None]) -> AbortDecision | None:
        consumed = track.meter.consumed
        if limit.max_consumed is not None and consumed > limit.max_consumed:
            return AbortDecision(
                f"{name}: consumed {consumed:.2%} of the error budget, more than the "
                f"{limit.max_consumed:.2%} allowed", name, consumed, rates)
        if limit.burn_rate is not None and all_above(rates, limit.burn_rate):
            spelled = " and ".join(f"{v:.1f}x over {w}" for w, v in rates.items())
            return AbortDecision(f"{name}: burn rate {spelled}, above the {limit.burn_rate}x "
                                 "limit", name, consumed, rates)
        return None

    def _check_no_data(self, name: str, track: SLOTrack, t: float,
                       rates: dict[str, float | None]) -> AbortDecision | None:
        if track.no_data_since is None:
            track.no_data_since = t
        if t - track.no_data_since >= self.no_data_grace:
            return AbortDecision(f"{name}: no data for {t - track.no_data_since:.1f}s; "
                                 "cannot guard the error budget blind", name,
                                 track.meter.consumed, rates)
        return None

"""The abort guard: after every sample, budget consumed and multi-window burn rates.

Only fault-phase samples count: the question is what *this experiment* burns, and a
window that reached back into the calm before-phase would dilute the first bad samples
and delay the abort. Each window therefore covers min(window, time since faults began).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaosrunner.slo.budget import budget_consumed, burn_rate
from chaosrunner.slo.sources.base import Reading
from chaosrunner.spec.models import SLO, ErrorBudgetAbort
from chaosrunner.spec.units import format_duration


@dataclass(frozen=True)
class BadShare:
    """What one sample says about the budget: `bad` of `total` events over `dt` seconds."""

    t: float
    dt: float
    bad: float
    total: float

    @property
    def error_ratio(self) -> float:
        return self.bad / self.total if self.total > 0 else 0.0


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
    """Fault-phase history of one guarded SLO."""

    slo: SLO
    shares: deque[BadShare] = field(default_factory=deque)
    consumed: float = 0.0
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
        self.tracks = {name: SLOTrack(slos[name]) for name in self.limits}
        self.no_data_grace = no_data_grace

    def check(self, name: str, reading: Reading, t: float, dt: float) -> AbortDecision | None:
        """Record one fault-phase sample; an AbortDecision when a limit is crossed."""
        track = self.tracks.get(name)
        if track is None:
            return None
        limit = self.limits[name]
        share = bad_share(track.slo, reading, t, dt)
        if share is None:
            return self._check_no_data(name, track, t)
        track.no_data_since = None
        track.shares.append(share)
        budget = track.slo.budget or 1e-9
        track.consumed += budget_consumed(burn_rate(share.error_ratio, budget), dt,
                                          track.slo.window)
        self._forget_before(track, t - max(limit.windows))
        return self._judge(name, track, limit, t)

    def burn_rates(self, name: str, t: float) -> dict[str, float | None]:
        limit, track = self.limits[name], self.tracks[name]
        return {format_duration(w): self._burn(track, t - w) for w in limit.windows}

    def consumed(self, name: str) -> float:
        return self.tracks[name].consumed

    def _judge(self, name: str, track: SLOTrack, limit: ErrorBudgetAbort,
               t: float) -> AbortDecision | None:
        rates = self.burn_rates(name, t)
        if limit.max_consumed is not None and track.consumed > limit.max_consumed:
            return AbortDecision(
                f"{name}: consumed {track.consumed:.2%} of the error budget, more than the "
                f"{limit.max_consumed:.2%} allowed", name, track.consumed, rates)
        values = list(rates.values())
        if limit.burn_rate is not None and all(v is not None and v > limit.burn_rate
                                               for v in values):
            spelled = " and ".join(f"{v:.1f}x over {w}" for w, v in rates.items())
            return AbortDecision(f"{name}: burn rate {spelled}, above the {limit.burn_rate}x "
                                 "limit", name, track.consumed, rates)
        return None

    def _check_no_data(self, name: str, track: SLOTrack, t: float) -> AbortDecision | None:
        if track.no_data_since is None:
            track.no_data_since = t
        if t - track.no_data_since >= self.no_data_grace:
            return AbortDecision(f"{name}: no data for {t - track.no_data_since:.1f}s; "
                                 "cannot guard the error budget blind", name, track.consumed,
                                 self.burn_rates(name, t))
        return None

    @staticmethod
    def _burn(track: SLOTrack, since: float) -> float | None:
        bad = total = 0.0
        for share in track.shares:
            if share.t > since:
                bad += share.error_ratio * share.dt
                total += share.dt
        if total <= 0:
            return None
        return burn_rate(bad / total, track.slo.budget or 1e-9)

    @staticmethod
    def _forget_before(track: SLOTrack, horizon: float) -> None:
        while track.shares and track.shares[0].t <= horizon:
            track.shares.popleft()

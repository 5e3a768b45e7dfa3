"""Error-budget arithmetic: pure functions, no I/O (DESIGN.md section 4).

    burn     = error_ratio / budget          where budget = 1 - target
    consumed = burn * elapsed / window       (a share of the SLO window's whole budget)

A burn rate of 1 spends exactly the budget over the SLO window; 14.4 for one hour of a
30-day window spends 14.4 * 1h / 720h = 2 % of it (SRE Workbook, chapter 5).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from chaosrunner.spec.models import PolicyThresholds

DEFAULT_WINDOW = 30 * 86400.0

# The windows `chaosrunner budget` reports burn rates over, in seconds.
BURN_WINDOWS: dict[str, float] = {
    "5m": 300.0, "30m": 1800.0, "1h": 3600.0, "6h": 21600.0, "3d": 259200.0,
}


def burn_rate(error_ratio: float, budget: float) -> float:
    """How many times faster than sustainable the budget is being spent.

    `error_ratio` is the bad share of events (0..1); `budget` is 1 - target.

    >>> round(burn_rate(0.0144, 0.001), 6)
    14.4
    """
    if budget <= 0.0:
        # A 100 % target has no budget: any error is an infinite burn, none is no burn.
        return math.inf if error_ratio > 0.0 else 0.0
    return max(error_ratio, 0.0) / budget


def budget_consumed(burn: float, elapsed_seconds: float, window_seconds: float) -> float:
    """Share of the SLO window's budget spent by burning at `burn` for `elapsed_seconds`.

    >>> round(budget_consumed(14.4, 3600, 30 * 86400), 6)
    0.02
    """
    if window_seconds <= 0.0:
        raise ValueError(f"SLO window must be positive, got {window_seconds}s")
    return burn * max(elapsed_seconds, 0.0) / window_seconds


def budget_remaining(error_ratio: float, budget: float) -> float:
    """Share of the window's budget left when `error_ratio` is the bad share over the window.

    1.0 is untouched, 0.0 spent, below 0 overspent.

    >>> round(budget_remaining(0.0005, 0.001), 6)
    0.5
    """
    return 1.0 - burn_rate(error_ratio, budget)


# --- the error budget policy (the seed's decision framework) ----------------------------------


class PolicyDecision(enum.Enum):
    """What the seed's error budget policy says the team should do now."""

    FULL_VELOCITY = "full_velocity"                      # budget > 50 %
    RELIABILITY_PRIORITISED = "reliability_prioritised"  # 25-50 %
    FEATURE_FREEZE = "feature_freeze"                    # 10-25 %
    RELIABILITY_ONLY = "reliability_only"                # < 10 %
    UNKNOWN = "unknown"                                  # remaining budget not known

    @property
    def text(self) -> str:
        return _DECISION_TEXT[self]


_DECISION_TEXT = {
    PolicyDecision.FULL_VELOCITY: "feature development at full velocity",
    PolicyDecision.RELIABILITY_PRIORITISED: "reliability improvements prioritised",
    PolicyDecision.FEATURE_FREEZE: "feature freeze except critical fixes",
    PolicyDecision.RELIABILITY_ONLY: "full reliability focus, no feature releases",
    PolicyDecision.UNKNOWN: "unknown: remaining budget cannot be measured",
}


def policy_decision(remaining: float | None,
                    thresholds: PolicyThresholds | None = None) -> PolicyDecision:
    """The band `remaining` (share of the window's budget) falls in.

    A value exactly on a boundary belongs to the better band ("above 50 %" is read as
    "at least 50 %"), so an untouched 50 % policy line does not flip on rounding noise.

    >>> policy_decision(0.6).value, policy_decision(0.3).value, policy_decision(0.05).value
    ('full_velocity', 'reliability_prioritised', 'reliability_only')
    """
    if remaining is None or math.isnan(remaining):
        return PolicyDecision.UNKNOWN
    bands = thresholds or PolicyThresholds()
    if remaining >= bands.full_velocity:
        return PolicyDecision.FULL_VELOCITY
    if remaining >= bands.reliability_prioritised:
        return PolicyDecision.RELIABILITY_PRIORITISED
    if remaining >= bands.feature_freeze:
        return PolicyDecision.FEATURE_FREEZE
    return PolicyDecision.RELIABILITY_ONLY


# --- multi-window, multi-burn-rate alerts (SRE Workbook, chapter 5, table 5-8) ---------------


class AlertState(enum.Enum):
    PAGE = "page"
    TICKET = "ticket"
    NONE = "none"
    UNKNOWN = "unknown"  # no burn rate could be measured


@dataclass(frozen=True)
class AlertRule:
    """Fire when both windows burn at least `threshold` times the sustainable rate."""

    severity: AlertState
    long_window: str
    short_window: str
    budget_share: float  # share of the window's budget spent in `long_window` at threshold

    def threshold(self, window_seconds: float = DEFAULT_WINDOW) -> float:
        """Burn rate that spends `budget_share` of the budget in `long_window`.

        For the Workbook's 30-day window this is its table: 14.4, 6 and 1.
        """
        return self.budget_share * window_seconds / BURN_WINDOWS[self.long_window]

    def fires(self, burn_rates: Mapping[str, float | None],
              window_seconds: float = DEFAULT_WINDOW) -> bool:
        limit = self.threshold(window_seconds)
        long_burn = burn_rates.get(self.long_window)
        short_burn = burn_rates.get(self.short_window)
        if long_burn is None or short_burn is None:
            return False
        return long_burn >= limit and short_burn >= limit


ALERT_RULES = (
    AlertRule(AlertState.PAGE, "1h", "5m", 0.02),
    AlertRule(AlertState.PAGE, "6h", "30m", 0.05),
    AlertRule(AlertState.TICKET, "3d", "6h", 0.10),
)


def alert_state(burn_rates: Mapping[str, float | None],
                window_seconds: float = DEFAULT_WINDOW) -> AlertState:
    """Page, ticket or none from burn rates keyed by window name ("5m" ... "3d").

    >>> alert_state({"1h": 15.0, "5m": 20.0}).value
    'page'
    >>> alert_state({"1h": 15.0, "5m": 2.0, "3d": 1.2, "6h": 1.1}).value
    'ticket'
    """
    if all(burn_rates.get(name) is None for name in BURN_WINDOWS):
        return AlertState.UNKNOWN
    for severity in (AlertState.PAGE, AlertState.TICKET):
        if any(rule.fires(burn_rates, window_seconds)
               for rule in ALERT_RULES if rule.severity is severity):
            return severity
    return AlertState.NONE

"""Error-budget arithmetic: pure functions, no I/O (DESIGN.md section 4).

    burn     = error_ratio / budget          where budget = 1 - target
    consumed = burn * elapsed / window       (a share of the SLO window's whole budget)

A burn rate of 1 spends exactly the budget over the SLO window; 14.4 for one hour of a
30-day window spends 14.4 * 1h / 720h = 2 % of it (SRE Workbook, chapter 5).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from chaosrunner.spec.models import PolicyThresholds

DEFAULT_WINDOW = 30 * 86400.0

# The windows `chaosrunner budget` reports burn rates over, in seconds: the long and short
# windows of the alert rules below.
BURN_WINDOWS: dict[str, float] = {
    "5m": 300.0, "30m": 1800.0, "1h": 3600.0, "2h": 7200.0, "6h": 21600.0, "1d": 86400.0,
    "3d": 259200.0,
}


@dataclass(frozen=True)
class WindowBurn:
    """A burn rate over a window, and how much of the window the data behind it covers.

    `held` is the seconds of the window there is data for (None: not known). A figure
    over less than its whole window is *partial*: it is the burn over `held`, not over
    `window`, and says so (`coverage_text()`).
    """

    window: float
    burn: float | None
    held: float | None = None

    @property
    def coverage(self) -> float | None:
        """Share of the window there is data for (0..1), None when not known."""
        if self.held is None or self.window <= 0:
            return None
        return min(max(self.held / self.window, 0.0), 1.0)

    @property
    def partial(self) -> bool:
        return self.coverage is not None and self.coverage < 1.0

    def coverage_text(self) -> str:
        """'over 3 min of the 1 h window', 'over the whole 1 h window' or ''."""
        if self.held is None:
            return ""
        whole = spell_duration(self.window)
        if not self.partial:
            return f"over the whole {whole} window"
        return f"over {spell_duration(self.held)} of the {whole} window"


def spell_duration(seconds: float) -> str:
    """A duration for people, two significant digits: '3 min', '1 h', '4 d'.

    >>> spell_duration(180), spell_duration(3600), spell_duration(345600), spell_duration(5400)
    ('3 min', '1 h', '4 d', '1.5 h')
    """
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.2g} {unit}"
    return f"{seconds:.2g} s"


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


# --- the budget a run's own samples spend --------------------------------------------------------


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


@dataclass
class BudgetMeter:
    """The budget one SLO's samples spend, the one computation of a run's figures.

    `consumed` is the share of the SLO window's budget spent by every sample added (burn x
    dt / window, summed); `burn(seconds, now)` the burn rate over the trailing `seconds`,
    with the share of them the samples cover (`WindowBurn.held`). The run's guard feeds it
    the fault-phase samples; its figures are the abort box's and the report's.
    """

    budget: float
    window: float
    horizon: float = 300.0  # seconds of samples kept for `burn()`
    consumed: float = 0.0
    observed: float = 0.0   # seconds of samples added
    shares: deque[BadShare] = field(default_factory=deque)

    def add(self, share: BadShare) -> None:
        self.consumed += budget_consumed(burn_rate(share.error_ratio, self.budget), share.dt,
                                         self.window)
        self.observed += share.dt
        while self.shares and self.shares[0].t <= share.t - self.horizon:
            self.shares.popleft()
        self.shares.append(share)

    def burn(self, seconds: float, now: float) -> WindowBurn:
        """Burn rate over (now - seconds, now], time-weighted, and how much of it is held."""
        bad = held = 0.0
        for share in self.shares:
            if share.t > now - seconds:
                bad += share.error_ratio * share.dt
                held += share.dt
        if held <= 0:
            return WindowBurn(seconds, None, 0.0)
        return WindowBurn(seconds, burn_rate(bad / held, self.budget), min(held, seconds))

    @property
    def mean_burn(self) -> float | None:
        """The burn rate over every sample added."""
        if self.observed <= 0:
            return None
        return self.consumed * self.window / self.observed


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


# --- multi-window, multi-burn-rate alerts (SRE Workbook, chapter 5) ---------------------------
#
# The Workbook's table 5-8 for a 30-day SLO, with Sloth's extra ticket rule (3x over 1d and
# 2h; Sloth's default 30-day windows, also Pyrra's shape): the factors and windows are
# fixed, whatever the SLO window, as in Sloth and Pyrra. `alerting: window-scaled` scales
# each factor with the SLO window instead (budget share x SLO window / long window), so a
# 3-day SLO pages at 1.44 over 1h; that is a variant, not the standard.

WORKBOOK_PERIOD = 30 * 86400.0


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
    budget_share: float  # share of a 30-day budget spent in `long_window` at threshold

    def threshold(self, window_seconds: float = DEFAULT_WINDOW,
                  mode: str = "workbook") -> float:
        """The burn-rate factor: the Workbook's 14.4, 6, 3, 1; scaled when asked.

        >>> rule = AlertRule(AlertState.PAGE, "1h", "5m", 0.02)
        >>> days3 = 3 * 86400
        >>> round(rule.threshold(days3), 2), round(rule.threshold(days3, "window-scaled"), 2)
        (14.4, 1.44)
        """
        period = window_seconds if mode == "window-scaled" else WORKBOOK_PERIOD
        return self.budget_share * period / BURN_WINDOWS[self.long_window]

    def fires(self, burn_rates: Mapping[str, float | None],
              window_seconds: float = DEFAULT_WINDOW, mode: str = "workbook") -> bool:
        windows = (self.long_window, self.short_window)
        return all_above({name: burn_rates.get(name) for name in windows},
                         self.threshold(window_seconds, mode), inclusive=True)


def all_above(burn_rates: Mapping[str, float | None], limit: float,
              inclusive: bool = False) -> bool:
    """True when every window has a burn rate above `limit` (at least, when inclusive).

    The one multi-window test: alert rules use it (at least the factor, as Prometheus's
    `>=`... rules are written), and so does the run's abort guard (strictly above).
    """
    values = list(burn_rates.values())
    if not values or any(v is None for v in values):
        return False
    return all(v is not None and (v >= limit if inclusive else v > limit) for v in values)


ALERT_RULES = (
    AlertRule(AlertState.PAGE, "1h", "5m", 0.02),
    AlertRule(AlertState.PAGE, "6h", "30m", 0.05),
    AlertRule(AlertState.TICKET, "1d", "2h", 0.10),
    AlertRule(AlertState.TICKET, "3d", "6h", 0.10),
)


def alert_state(burn_rates: Mapping[str, float | None],
                window_seconds: float = DEFAULT_WINDOW, mode: str = "workbook") -> AlertState:
    """Page, ticket or none from burn rates keyed by window name ("5m" ... "3d").

    >>> alert_state({"1h": 15.0, "5m": 20.0}).value
    'page'
    >>> alert_state({"1h": 15.0, "5m": 2.0, "3d": 1.2, "6h": 1.1}).value
    'ticket'
    """
    if all(burn_rates.get(name) is None for name in BURN_WINDOWS):
        return AlertState.UNKNOWN
    for severity in (AlertState.PAGE, AlertState.TICKET):
        if any(rule.fires(burn_rates, window_seconds, mode)
               for rule in ALERT_RULES if rule.severity is severity):
            return severity
    return AlertState.NONE

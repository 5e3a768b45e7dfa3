"""Error-budget arithmetic: pure functions, no I/O (DESIGN.md section 4).

    burn     = error_ratio / budget          where budget = 1 - target
    consumed = burn * elapsed / window       (a share of the SLO window's whole budget)

A burn rate of 1 spends exactly the budget over the SLO window; 14.4 for one hour of a
30-day window spends 14.4 * 1h / 720h = 2 % of it (SRE Workbook, chapter 5).
"""

from __future__ import annotations

import math


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

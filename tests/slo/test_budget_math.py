"""Error-budget arithmetic against the SRE Workbook's worked examples (chapter 5)."""

from __future__ import annotations

import math

import pytest

from chaosrunner.slo.budget import (
    ALERT_RULES,
    AlertState,
    BadShare,
    BudgetMeter,
    PolicyDecision,
    WindowBurn,
    alert_state,
    budget_consumed,
    budget_remaining,
    burn_rate,
    policy_decision,
)
from chaosrunner.spec.models import PolicyThresholds

DAY = 86400.0
WINDOW_30D = 30 * DAY


def test_burn_rate_is_error_ratio_over_budget() -> None:
    # 99.9 % SLO: budget 0.1 %; 1.44 % errors burn 14.4 times the sustainable rate.
    assert burn_rate(0.0144, 1 - 0.999) == pytest.approx(14.4)
    assert burn_rate(0.001, 0.001) == pytest.approx(1.0)
    assert burn_rate(0.0, 0.001) == 0.0


def test_workbook_14_4_for_one_hour_consumes_2_percent() -> None:
    assert budget_consumed(14.4, 3600, WINDOW_30D) == pytest.approx(0.02)


@pytest.mark.parametrize(("burn", "hours", "share"), [
    (14.4, 1, 0.02),   # page: 2 % in 1 h
    (6.0, 6, 0.05),    # page: 5 % in 6 h
    (1.0, 72, 0.10),   # ticket: 10 % in 3 d
    (1.0, 720, 1.0),   # burning at 1x spends exactly the whole budget over the window
    (36.0, 20, 1.0),   # Workbook: 100 % errors at 99.9 % spend a 30-day budget in ~20 h
])
def test_workbook_budget_shares(burn: float, hours: float, share: float) -> None:
    assert budget_consumed(burn, hours * 3600, WINDOW_30D) == pytest.approx(share)


def test_total_outage_burn_at_99_9() -> None:
    # 100 % errors against a 0.1 % budget: burn 1000, budget gone in 43.2 minutes.
    burn = burn_rate(1.0, 0.001)
    assert burn == pytest.approx(1000.0)
    assert budget_consumed(burn, 43.2 * 60, WINDOW_30D) == pytest.approx(1.0)


def test_zero_budget_means_any_error_is_infinite_burn() -> None:
    assert math.isinf(burn_rate(0.01, 0.0))
    assert burn_rate(0.0, 0.0) == 0.0


def test_consumed_needs_a_positive_window() -> None:
    with pytest.raises(ValueError, match="window"):
        budget_consumed(1.0, 60, 0)
    assert budget_consumed(2.0, -5, WINDOW_30D) == 0.0


def test_remaining_budget_can_go_negative() -> None:
    assert budget_remaining(0.0, 0.001) == 1.0
    assert budget_remaining(0.0005, 0.001) == pytest.approx(0.5)
    assert budget_remaining(0.002, 0.001) == pytest.approx(-1.0)


@pytest.mark.parametrize(("remaining", "decision"), [
    (1.0, PolicyDecision.FULL_VELOCITY),
    (0.51, PolicyDecision.FULL_VELOCITY),
    (0.5, PolicyDecision.FULL_VELOCITY),          # a boundary belongs to the better band
    (0.49, PolicyDecision.RELIABILITY_PRIORITISED),
    (0.25, PolicyDecision.RELIABILITY_PRIORITISED),
    (0.2, PolicyDecision.FEATURE_FREEZE),
    (0.1, PolicyDecision.FEATURE_FREEZE),
    (0.09, PolicyDecision.RELIABILITY_ONLY),
    (-0.5, PolicyDecision.RELIABILITY_ONLY),
    (None, PolicyDecision.UNKNOWN),
    (math.nan, PolicyDecision.UNKNOWN),
])
def test_seed_policy_bands(remaining: float | None, decision: PolicyDecision) -> None:
    assert policy_decision(remaining) is decision


def test_policy_thresholds_come_from_the_file() -> None:
    strict = PolicyThresholds(full_velocity=0.8, reliability_prioritised=0.6, feature_freeze=0.4)
    assert policy_decision(0.7, strict) is PolicyDecision.RELIABILITY_PRIORITISED
    assert policy_decision(0.5, strict) is PolicyDecision.FEATURE_FREEZE
    assert policy_decision(0.3, strict) is PolicyDecision.RELIABILITY_ONLY


WORKBOOK_TABLE = {
    (AlertState.PAGE, "1h", "5m"): pytest.approx(14.4),
    (AlertState.PAGE, "6h", "30m"): pytest.approx(6.0),
    (AlertState.TICKET, "1d", "2h"): pytest.approx(3.0),   # Sloth's extra ticket rule
    (AlertState.TICKET, "3d", "6h"): pytest.approx(1.0),
}


@pytest.mark.parametrize("window", [3 * DAY, 7 * DAY, WINDOW_30D, 90 * DAY])
def test_alert_factors_are_the_workbook_table_whatever_the_slo_window(window: float) -> None:
    # Sloth and Pyrra page at 14.4 over 1h for every SLO window; so does chaosrunner.
    table = {(r.severity, r.long_window, r.short_window): r.threshold(window)
             for r in ALERT_RULES}
    assert table == WORKBOOK_TABLE


def quiet(**overrides: float | None) -> dict[str, float | None]:
    rates: dict[str, float | None] = {"5m": 0.5, "30m": 0.5, "1h": 0.5, "2h": 0.5, "6h": 0.5,
                                      "1d": 0.5, "3d": 0.5}
    rates.update(overrides)
    return rates


def test_page_needs_both_long_and_short_window() -> None:
    assert alert_state(quiet(**{"1h": 15.0, "5m": 15.0})) is AlertState.PAGE
    # A burst that is over (short window calm) does not page: the Workbook's reset time.
    assert alert_state(quiet(**{"1h": 15.0, "5m": 1.0})) is AlertState.NONE
    # A fresh spike not yet sustained over the hour does not page either.
    assert alert_state(quiet(**{"1h": 3.0, "5m": 50.0})) is AlertState.NONE


def test_slow_burn_pages_over_six_hours_and_tickets_over_three_days() -> None:
    assert alert_state(quiet(**{"6h": 6.5, "30m": 7.0})) is AlertState.PAGE
    assert alert_state(quiet(**{"3d": 1.1, "6h": 1.2})) is AlertState.TICKET
    assert alert_state(quiet(**{"3d": 0.9, "6h": 1.2})) is AlertState.NONE


def test_page_wins_over_ticket() -> None:
    rates = {"5m": 20.0, "30m": 20.0, "1h": 20.0, "6h": 20.0, "3d": 20.0}
    assert alert_state(rates) is AlertState.PAGE


def test_unknown_burn_rates() -> None:
    assert alert_state(dict.fromkeys(["5m", "30m", "1h", "6h", "3d"])) is AlertState.UNKNOWN
    # A missing window cannot fire its rule, but the others still count.
    assert alert_state(quiet(**{"1h": None, "5m": 99.0})) is AlertState.NONE
    assert alert_state(quiet(**{"1h": None, "3d": 2.0, "6h": 2.0})) is AlertState.TICKET


def test_a_short_slo_window_pages_at_the_workbook_factor() -> None:
    # A 3-day SLO burning 10x over 1h and 20x over 5m: below 14.4, no page (issue 17).
    rates = quiet(**{"1h": 10.25, "5m": 20.0, "30m": 20.0})
    assert alert_state(rates, 3 * DAY) is AlertState.NONE
    assert alert_state(quiet(**{"1h": 15.0, "5m": 15.0}), 3 * DAY) is AlertState.PAGE


def test_window_scaled_alerting_is_the_named_variant() -> None:
    # 2 % of a 7-day budget in one hour is a burn of 3.36: only when asked for.
    week = 7 * DAY
    assert ALERT_RULES[0].threshold(week, "window-scaled") == pytest.approx(3.36)
    rates = quiet(**{"1h": 4.0, "5m": 4.0})
    assert alert_state(rates, week, "window-scaled") is AlertState.PAGE
    assert alert_state(rates, week) is AlertState.NONE
    assert alert_state(rates, WINDOW_30D, "window-scaled") is AlertState.NONE


def test_sloths_quick_ticket_fires_at_3x_over_a_day_and_2h() -> None:
    assert alert_state(quiet(**{"1d": 3.1, "2h": 3.5})) is AlertState.TICKET
    assert alert_state(quiet(**{"1d": 3.1, "2h": 2.0})) is AlertState.NONE


def test_window_burn_coverage() -> None:
    whole = WindowBurn(3600.0, 2.0, 3600.0)
    part = WindowBurn(3600.0, 2.0, 180.0)
    assert not whole.partial and whole.coverage_text() == "over the whole 1 h window"
    assert part.partial and part.coverage == pytest.approx(0.05)
    assert part.coverage_text() == "over 3 min of the 1 h window"
    assert WindowBurn(3600.0, 2.0).coverage is None and not WindowBurn(3600.0, 2.0).partial


def test_budget_meter_burn_and_coverage() -> None:
    meter = BudgetMeter(budget=0.01, window=3600.0, horizon=300.0)
    for step in range(4):  # 4 samples of 1 s at 50 % bad: burn 50
        meter.add(BadShare(t=float(step + 1), dt=1.0, bad=1.0, total=2.0))
    last_minute = meter.burn(60.0, now=4.0)
    assert last_minute.burn == pytest.approx(50.0)
    assert last_minute.held == pytest.approx(4.0) and last_minute.partial
    assert last_minute.coverage_text() == "over 4 s of the 1 min window"
    assert meter.consumed == pytest.approx(50.0 * 4 / 3600)
    assert meter.mean_burn == pytest.approx(50.0)
    assert meter.burn(2.0, now=4.0).held == pytest.approx(2.0)
    assert not meter.burn(2.0, now=4.0).partial

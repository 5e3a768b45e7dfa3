"""Impact of a run in the seed's incident severity levels (SEV1 / SEV2 / SEV3).

The seed defines them by the share of users affected: SEV1 a complete outage affecting all
users, SEV2 more than 10 %, SEV3 less than 10 %. A chaos run has no users, but it has probe
traffic: the share of probe requests that failed during the fault phase
(`1 - events_good / events_total` summed over the fault phase's samples) stands in for the
share of users affected. With several SLOs carrying event counts, the worst one decides.

Probe traffic stands for users only where it runs beside them, and a one-second blip is
not an outage: the level is at most `capped_at` (SEV3) when the failures lasted less than
`min_seconds` (the fault-phase samples with failed requests, times the sampling interval),
or when the run's environment is not one where incidents are declared (the steady-state
file's `incident_severity.environments`, by default the production names). The summary
says what the level would have been. Thresholds: `incident_severity:` in the SteadyState
file (docs/design.md 5), recorded in report.json as `severity_policy`.

    >>> classify_share(0.25).level
    'SEV2'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from chaosrunner.report.model import RunReport

# The seed's severity levels, verbatim, for the reports to quote.
SEVERITY_LEVELS: dict[str, dict[str, str]] = {
    "SEV1": {"description": "Complete service outage affecting all users",
             "response_time": "5 minutes", "escalation": "Page oncall immediately",
             "stakeholder_notification": "Within 15 minutes"},
    "SEV2": {"description": "Significant service degradation affecting >10% users",
             "response_time": "15 minutes", "escalation": "Alert oncall via Slack",
             "stakeholder_notification": "Within 30 minutes"},
    "SEV3": {"description": "Minor service issues affecting <10% users",
             "response_time": "1 hour", "escalation": "Create ticket during business hours",
             "stakeholder_notification": "Within 2 hours"},
}


_ORDER = ("none", "SEV3", "SEV2", "SEV1")


@dataclass(frozen=True)
class SeverityThresholds:
    """SEV1 when the failed share reaches `sev1_at`; SEV2 above `sev2_above`; else SEV3.
    Failures lasting less than `min_seconds` are at most `capped_at`."""

    sev1_at: float = 1.0
    sev2_above: float = 0.10
    min_seconds: float = 10.0
    capped_at: str = "SEV3"

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any]) -> SeverityThresholds:
        """From report.json's `severity_policy` (the steady-state file's settings)."""
        return cls(**{key: policy[key] for key in
                      ("sev1_at", "sev2_above", "min_seconds", "capped_at") if key in policy})

    def __post_init__(self) -> None:
        if not 0.0 <= self.sev2_above < self.sev1_at <= 1.0:
            raise ValueError(
                f"severity thresholds must satisfy 0 <= sev2_above < sev1_at <= 1, got "
                f"sev2_above={self.sev2_above}, sev1_at={self.sev1_at}")
        if self.capped_at not in _ORDER:
            raise ValueError(f"capped_at must be one of {', '.join(_ORDER)}")


@dataclass(frozen=True)
class Impact:
    """How much probe traffic the run hurt, and the severity that corresponds to."""

    level: str  # SEV1 | SEV2 | SEV3 | none | unknown
    failed_share: float | None
    failed_events: float | None = None
    total_events: float | None = None
    slo: str | None = None
    uncapped: str | None = None  # the level before the cap, when it was capped
    capped_because: str | None = None

    @property
    def description(self) -> str:
        return SEVERITY_LEVELS.get(self.level, {}).get("description", "")

    def summary(self) -> str:
        """One line for a report: `SEV2: 23.5% of probe traffic failed (checkout_probe ...)`."""
        if self.level == "unknown":
            return ("unknown: no probe traffic counts in the fault phase "
                    "(only SLOs with good/total events can be classified)")
        assert self.failed_share is not None
        share = f"{self.failed_share * 100:.2f}".rstrip("0").rstrip(".")
        counts = (f" ({self.slo}: {self.failed_events:.0f} of {self.total_events:.0f} "
                  "requests failed)" if self.total_events is not None else "")
        if self.level == "none":
            return f"none: no probe traffic failed during the fault phase{counts}"
        capped = (f" (would be {self.uncapped} by share alone; at most {self.level} because "
                  f"{self.capped_because})" if self.uncapped else "")
        return (f"{self.level}: {share}% of probe traffic failed in the fault phase"
                f"{counts}{capped}")


def classify_share(failed_share: float,
                   thresholds: SeverityThresholds | None = None) -> Impact:
    """Severity of a failed-traffic share in [0, 1]."""
    limits = thresholds or SeverityThresholds()
    if failed_share <= 0:
        level = "none"
    elif failed_share >= limits.sev1_at:
        level = "SEV1"
    elif failed_share > limits.sev2_above:
        level = "SEV2"
    else:
        level = "SEV3"
    return Impact(level=level, failed_share=failed_share)


def classify_impact(report: RunReport,
                    thresholds: SeverityThresholds | None = None) -> Impact:
    """Severity of a run from the probe traffic that failed during its fault phase.

    Thresholds: `thresholds`, else the run's `severity_policy`, else the seed's (SEV1: all
    traffic failed, SEV2: more than 10 %); then capped for short failures and for
    environments where no incident is declared (module docstring).
    """
    limits = thresholds or SeverityThresholds.from_policy(report.severity_policy)
    impact = _by_share(report, limits)
    reason = _cap_reason(report, impact, limits)
    if reason is None or _ORDER.index(impact.level) <= _ORDER.index(limits.capped_at):
        return impact
    return replace(impact, level=limits.capped_at, uncapped=impact.level,
                   capped_because=reason)


def _cap_reason(report: RunReport, impact: Impact, limits: SeverityThresholds) -> str | None:
    if impact.level not in _ORDER or impact.slo is None:
        return None
    if report.severity_policy.get("incident_environment") is False:
        return (f"environment {report.environment!r} is not one where incidents are "
                "declared (incident_severity.environments)")
    lasted = failing_seconds(report, impact.slo)
    if lasted < limits.min_seconds:
        return (f"the failures lasted {lasted:g} s, less than "
                f"incident_severity.min_duration ({limits.min_seconds:g} s)")
    return None


def failing_seconds(report: RunReport, slo: str) -> float:
    """How long the fault phase had failed requests of `slo`: samples with failures times
    the sampling interval (the smallest step between the SLO's samples)."""
    times = sorted(sample.t for sample in report.samples if sample.slo == slo)
    steps = [later - earlier for earlier, later in pairwise(times)
             if later > earlier]
    interval = min(steps) if steps else 1.0
    failing = sum(1 for sample in report.samples
                  if sample.slo == slo and sample.phase == "faults"
                  and sample.events_total and sample.events_good is not None
                  and sample.events_good < sample.events_total)
    return round(failing * interval, 3)


def _by_share(report: RunReport, thresholds: SeverityThresholds) -> Impact:
    totals: dict[str, list[float]] = {}
    for sample in report.samples:
        if (sample.phase != "faults" or sample.events_total is None
                or sample.events_good is None or sample.events_total <= 0):
            continue
        good_total = totals.setdefault(sample.slo, [0.0, 0.0])
        good_total[0] += sample.events_good
        good_total[1] += sample.events_total
    if not totals:
        return Impact(level="unknown", failed_share=None)
    # The worst-hit SLO decides: its traffic is the users who would have been affected.
    slo, (good, total) = max(totals.items(), key=lambda item: 1 - item[1][0] / item[1][1])
    failed = max(0.0, total - good)
    base = classify_share(failed / total, thresholds)
    return Impact(level=base.level, failed_share=base.failed_share,
                  failed_events=failed, total_events=total, slo=slo)

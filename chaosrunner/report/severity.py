"""Impact of a run in the seed's incident severity levels (SEV1 / SEV2 / SEV3).

The seed defines them by the share of users affected: SEV1 a complete outage affecting all
users, SEV2 more than 10 %, SEV3 less than 10 %. A chaos run has no users, but it has probe
traffic: the share of probe requests that failed during the fault phase
(`1 - events_good / events_total` summed over the fault phase's samples) stands in for the
share of users affected. With several SLOs carrying event counts, the worst one decides.

    >>> classify_share(0.25).level
    'SEV2'
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class SeverityThresholds:
    """SEV1 when the failed share reaches `sev1_at`; SEV2 above `sev2_above`; else SEV3."""

    sev1_at: float = 1.0
    sev2_above: float = 0.10

    def __post_init__(self) -> None:
        if not 0.0 <= self.sev2_above < self.sev1_at <= 1.0:
            raise ValueError(
                f"severity thresholds must satisfy 0 <= sev2_above < sev1_at <= 1, got "
                f"sev2_above={self.sev2_above}, sev1_at={self.sev1_at}")


@dataclass(frozen=True)
class Impact:
    """How much probe traffic the run hurt, and the severity that corresponds to."""

    level: str  # SEV1 | SEV2 | SEV3 | none | unknown
    failed_share: float | None
    failed_events: float | None = None
    total_events: float | None = None
    slo: str | None = None

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
        return f"{self.level}: {share}% of probe traffic failed in the fault phase{counts}"


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

    Thresholds default to the seed's (SEV1: all traffic failed, SEV2: more than 10 %);
    pass `SeverityThresholds(sev1_at=0.9, sev2_above=0.05)` to be stricter.
    """
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

"""SEV1/SEV2/SEV3 from the share of probe traffic that failed in the fault phase."""

from __future__ import annotations

import pytest
from report_builders import build_report, latency_slo

from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import SeverityThresholds, classify_impact, classify_share


@pytest.mark.parametrize(("share", "level"), [
    (0.0, "none"), (0.001, "SEV3"), (0.10, "SEV3"), (0.1001, "SEV2"), (0.99, "SEV2"),
    (1.0, "SEV1")])
def test_seed_thresholds(share: float, level: str) -> None:
    assert classify_share(share).level == level


def test_thresholds_are_configurable() -> None:
    strict = SeverityThresholds(sev1_at=0.5, sev2_above=0.01)
    assert classify_share(0.02, strict).level == "SEV2"
    assert classify_share(0.6, strict).level == "SEV1"
    with pytest.raises(ValueError, match="sev2_above"):
        SeverityThresholds(sev1_at=0.1, sev2_above=0.2)


def test_counts_only_fault_phase_probe_events() -> None:
    impact = classify_impact(build_report("failed"))
    # 2 of 20 requests fail in two of every three seconds: 6.7 % overall in the fault phase
    assert impact.level == "SEV3"
    assert impact.slo == "checkout_probe"
    assert impact.failed_share == pytest.approx(0.1 * 2 / 3, abs=0.005)
    assert impact.total_events is not None and impact.total_events > 0


def test_aborted_outage_is_sev1_and_configurable_to_less() -> None:
    report = build_report("aborted")
    assert classify_impact(report).level == "SEV1"
    # Samples without data (None events) in the fault phase are skipped, not counted as good.
    assert classify_impact(report).failed_share == 1.0


def test_before_phase_failures_do_not_count() -> None:
    impact = classify_impact(build_report("not_started"))  # 5 % failing, but only before
    assert impact.level == "unknown"
    assert "unknown" in impact.summary()


def test_without_event_counts_the_impact_is_unknown() -> None:
    report = build_report("failed", slos=[latency_slo()])
    assert classify_impact(report).level == "unknown"


def test_threshold_passed_through_write_reports(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chaosrunner.report.writer import write_reports

    write_reports(build_report("failed"), tmp_path,
                  severity=SeverityThresholds(sev1_at=0.5, sev2_above=0.05))
    assert "| Impact | SEV2:" in (tmp_path / "report.md").read_text()
    assert "SEV2" in (tmp_path / "postmortem.md").read_text()


def blip(environment: str, *, declared: bool, failing: int = 1) -> RunReport:
    """A fault phase of 30 samples at 1 s; `failing` of them lose all their requests."""
    report = build_report("passed", duration=30.0)
    report.environment = environment
    report.severity_policy = {"incident_environment": declared}
    faults = [s for s in report.samples if s.phase == "faults" and s.slo == "checkout_probe"
              and s.events_total]
    for index, sample in enumerate(faults):
        sample.events_good = sample.events_total if index >= failing else 0.0
    return report


def test_a_one_second_blip_in_staging_is_not_sev2() -> None:
    report = blip("staging", declared=False)
    report.severity_policy["sev2_above"] = 0.01  # 1 of 30 samples: SEV2 by share alone
    impact = classify_impact(report)
    assert impact.failed_share is not None and impact.failed_share > 0.01
    assert impact.level == "SEV3"
    assert impact.uncapped == "SEV2"


def test_staging_caps_even_a_long_outage_and_says_why() -> None:
    impact = classify_impact(blip("staging", declared=False, failing=30))
    assert (impact.level, impact.uncapped) == ("SEV3", "SEV1")
    assert "would be SEV1" in impact.summary() and "'staging'" in impact.summary()


def test_in_production_a_short_blip_is_capped_a_long_one_is_not() -> None:
    blipped = blip("production", declared=True, failing=1)
    blipped.severity_policy["sev2_above"] = 0.01  # SEV2 by share alone
    short = classify_impact(blipped)
    assert short.level == "SEV3"
    assert short.uncapped == "SEV2" and "lasted 1 s" in short.summary()
    # 1 of 30 samples fully failed: 3.3 % of traffic is SEV3 by share anyway; make it larger
    half = classify_impact(blip("production", declared=True, failing=5))
    assert (half.level, half.uncapped) == ("SEV3", "SEV2")
    assert "lasted 5 s" in half.summary()
    long = classify_impact(blip("production", declared=True, failing=12))
    assert long.level == "SEV2" and long.uncapped is None


def test_the_policy_is_read_from_the_report() -> None:
    report = blip("production", declared=True, failing=5)
    report.severity_policy["min_seconds"] = 2.0
    assert classify_impact(report).level == "SEV2"
    report.severity_policy.update(sev2_above=0.5)
    assert classify_impact(report).level == "SEV3"

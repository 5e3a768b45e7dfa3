"""postmortem.md: the seed's template, filled from the run, only when a look back is due."""

from __future__ import annotations

import re

import pytest
from report_builders import build_report

from chaosrunner.errors import Verdict
from chaosrunner.report.model import RunReport
from chaosrunner.report.postmortem import render_postmortem
from chaosrunner.report.severity import classify_impact

SEED_HEADINGS = ["## Summary", "## Timeline (All times in UTC)", "## Root Cause Analysis",
                 "### What Happened", "### Why It Happened", "## Impact Assessment",
                 "## Action Items", "## Lessons Learned", "### What Went Well",
                 "### What Could Be Improved", "### Prevention Measures"]


def render(report: RunReport) -> str:
    return render_postmortem(report, classify_impact(report))


@pytest.mark.parametrize(("verdict", "wanted"), [
    ("passed", False), ("failed", True), ("aborted", True), ("not_started", False),
    ("invalid", False), ("rollback_incomplete", True), ("interrupted", False)])
def test_only_for_failed_aborted_and_rollback_incomplete(verdict: str, wanted: bool) -> None:
    assert Verdict(verdict).postmortem_due is wanted


def test_follows_the_seed_template_in_order() -> None:
    text = render(build_report("aborted"))
    assert text.startswith("# Post-Mortem: Checkout tolerates 500 ms latency to payments "
                           "chaos experiment aborted - 2024-05-14")
    positions = [text.index(heading) for heading in SEED_HEADINGS]
    assert positions == sorted(positions)
    for field in ("**Duration**", "**Impact**", "**Root Cause**", "**Users Affected**",
                  "**Business Impact**", "**Error Budget**"):
        assert field in text
    assert "| Action | Owner | Priority | Due Date |" in text


def test_timeline_in_utc_in_order_with_fault_abort_and_restore() -> None:
    text = render(build_report("aborted"))
    timeline = text[text.index("## Timeline"):text.index("## Root Cause")]
    entries = re.findall(r"^- \*\*(\d\d:\d\d:\d\d)\.\d\d\d\*\* - (.*)$", timeline, re.M)
    times = [t for t, _ in entries]
    assert times == sorted(times)
    assert entries[0] == ("10:00:00", "Run started")
    assert entries[-1] == ("10:01:20", "Run ended: aborted")
    injected = next(t for t, e in entries if "injected on payments" in e)
    aborted = next(t for t, e in entries if e.startswith("Abort triggered"))
    restored = next(t for t, e in entries if e.startswith("Service fully restored"))
    symptoms = next(t for t, e in entries if e.startswith("Initial symptoms"))
    assert injected == "10:00:30" and aborted == "10:00:50" and restored == "10:00:52"
    assert symptoms <= aborted


def test_impact_and_budget_filled_in() -> None:
    text = render(build_report("aborted"))
    assert "**Severity**: SEV1 — Complete service outage affecting all users" in text
    assert "340 of 340 requests failed" in text
    assert re.search(r"\*\*Error Budget\*\*: `checkout_probe` 0\.0\d+% consumed", text)


def test_placeholders_for_what_a_person_must_write() -> None:
    text = render(build_report("failed"))
    for placeholder in ("_TODO: the underlying cause_", "_TODO: owner_",
                        "_TODO: revenue/reputation impact, if any_",
                        "_TODO: specific changes to prevent recurrence_"):
        assert placeholder in text
    assert "Find out why `checkout_probe >= 99%` was not met" in text


def test_rollback_incomplete_puts_recover_first() -> None:
    text = render(build_report("rollback_incomplete"))
    actions = text[text.index("## Action Items"):text.index("## Lessons")]
    first_row = actions.splitlines()[4]
    assert "chaosrunner recover" in first_row and "Critical" in first_row
    assert "could not be taken back" in text


def test_timeline_to_the_millisecond_in_the_real_order() -> None:
    """Issue 12.14: times to the millisecond; moments in the same millisecond keep the
    order they happen in (the abort, then rollback, then the revert it caused)."""
    report = build_report("aborted")
    assert report.abort is not None
    fault = report.faults[0]
    fault.reverted_at = report.abort.at  # the revert lands in the abort's millisecond
    for phase in report.phases:
        if phase.name == "rollback":
            phase.start = report.abort.at
    text = render(report)
    timeline = text[text.index("## Timeline"):text.index("## Root Cause")]
    entries = re.findall(r"^- \*\*(\d\d:\d\d:\d\d\.\d\d\d)\*\* - (.*)$", timeline, re.M)
    assert entries[0] == ("10:00:00.000", "Run started")
    whats = [what for _, what in entries]
    abort = next(i for i, what in enumerate(whats) if what.startswith("Abort triggered"))
    assert whats[abort + 1] == "Phase rollback started"
    assert whats[abort + 2] == "Fault `slow-payments` reverted"
    injected = next(t for t, e in entries if "injected on payments" in e)
    assert injected == "10:00:30.050"


def actions(report: RunReport) -> str:
    text = render(report)
    return text[text.index("## Action Items"):text.index("## Lessons")]


def test_no_stock_action_the_figures_contradict() -> None:
    """Issue 12.14: no "Speed up recovery" after a run that recovered in 2 s."""
    from chaosrunner.report.model import CheckResult

    report = build_report("failed")
    report.recovery_seconds = 2.0
    report.checks.append(CheckResult("after", "checkout_probe", 0.98, False))
    assert "recovery" not in actions(report).lower()


def test_a_run_that_never_recovered_gets_the_recovery_action() -> None:
    from chaosrunner.report.model import CheckResult

    report = build_report("failed")
    report.recovery_seconds = None
    report.checks.append(CheckResult("after", "checkout_probe", 0.5, False))
    assert "did not hold again within the after phase" in actions(report)


def test_criteria_not_judged_are_not_actions_or_lessons() -> None:
    report = build_report("failed")
    for criterion in report.criteria:
        criterion.passed, criterion.judged = False, False
    text = render(report)
    assert "Find out why" not in text and "was not met" not in text

"""report.md: what a person reads in a terminal or on GitHub."""

from __future__ import annotations

import re

from report_builders import build_report

from chaosrunner.report.markdown import render_markdown, text
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import classify_impact


def render(report: RunReport) -> str:
    return render_markdown(report, classify_impact(report))


def section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end >= 0 else None]


def test_verdict_and_hypothesis_on_top() -> None:
    lines = render(build_report("passed")).splitlines()
    assert lines[0] == "# PASSED: Checkout tolerates 500 ms latency to payments"
    assert lines[2] == "**Hypothesis:** System should handle 500ms latency gracefully"


def test_criteria_with_observed_values_and_results() -> None:
    markdown = render(build_report("failed"))
    criteria = section(markdown, "Success criteria")
    probe = next(line for line in criteria.splitlines() if "checkout_probe >= 99%" in line)
    assert "**FAIL**" in probe and "93.333%" in probe  # 280 of 300 requests in the fault phase
    p99 = next(line for line in criteria.splitlines() if "checkout_p99 < 2s" in line)
    assert "PASS" in p99 and " ms" in p99


def test_checks_budget_faults_times_recovery() -> None:
    markdown = render(build_report("passed"))
    checks = section(markdown, "Steady state")
    assert checks.count("| PASS |") == 4 and "| >= 99% |" in checks and "< 500 ms" in checks
    budget = section(markdown, "Error budget")
    assert "`checkout_probe`" in budget and "unknown" in budget
    faults = section(markdown, "Faults")
    assert "`slow-payments`" in faults and "`toxiproxy.latency`" in faults
    assert "2024-05-14 10:00:30.050 UTC" in faults and "2024-05-14 10:02:30.300 UTC" in faults
    assert "| Recovery time | 2.5 s after rollback |" in markdown
    assert "| Impact | SEV3:" in markdown


def test_abort_section_with_reason_and_burn_rates() -> None:
    markdown = render(build_report("aborted"))
    abort = section(markdown, "Abort")
    assert "burn rate above 14.4x" in abort and "| Burn rate 1m | 100.00x |" in abort
    assert "10:00:50.000 UTC" in abort
    assert "## Abort" not in render(build_report("passed"))


def test_not_started_says_criteria_were_not_judged() -> None:
    markdown = render(build_report("not_started"))
    assert "# NOT STARTED" in markdown
    assert "Not judged" in section(markdown, "Success criteria")
    assert "| Reason | steady state not met" in markdown


def test_unreverted_fault_is_shouted() -> None:
    faults = section(render(build_report("rollback_incomplete")), "Faults")
    assert "**NOT REVERTED**" in faults and "503" in faults


def test_user_text_cannot_break_tables_or_inject_html() -> None:
    assert text("a | b\nc") == "a \\| b c"
    assert text("<script>x</script>") == "\\<script>x\\</script>"
    assert text("p99 < 2s and checkout_probe >= 99%") == "p99 < 2s and checkout_probe >= 99%"
    markdown = render(build_report("failed", title="Evil | title", hypothesis="<img src=x>"))
    assert re.search(r"(?<!\\)<img", markdown) is None and "\\<img src=x>" in markdown
    assert "Evil \\| title" in markdown

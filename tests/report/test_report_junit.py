"""junit.xml: parsed with xml.etree; test cases, failures and their messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_builders import build_report

from chaosrunner.report.junit import render_junit
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import classify_impact


def parse(report: RunReport) -> ET.Element:
    root = ET.fromstring(render_junit(report, classify_impact(report)))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def cases(suite: ET.Element, group: str) -> list[ET.Element]:
    return [c for c in suite.findall("testcase") if c.get("classname", "").endswith("." + group)]


def failed(case: ET.Element) -> bool:
    return case.find("failure") is not None


def test_passed_run_one_case_per_criterion_and_check_no_failures() -> None:
    report = build_report("passed")
    suite = parse(report)
    assert [c.get("name") for c in cases(suite, "criteria")] == [
        "checkout_probe >= 99%", "checkout_p99 < 2s"]
    assert [c.get("name") for c in cases(suite, "steady_state")] == [
        "before: checkout_probe", "before: checkout_p99",
        "after: checkout_probe", "after: checkout_p99"]
    total = len(suite.findall("testcase"))
    assert suite.get("tests") == str(total) == "8"  # 2 criteria, 4 checks, 1 rollback, 1 run
    assert suite.get("failures") == "0"
    assert not any(failed(c) for c in suite.findall("testcase"))


def test_failed_criterion_carries_observed_and_expected() -> None:
    suite = parse(build_report("failed"))
    probe = cases(suite, "criteria")[0]
    failure = probe.find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "observed 9" in message and "expected checkout_probe >= 99%" in message
    assert not failed(cases(suite, "criteria")[1])
    assert int(suite.get("failures", "0")) == sum(failed(c) for c in suite.findall("testcase"))


def test_aborted_run_has_a_failing_case_saying_why() -> None:
    suite = parse(build_report("aborted"))
    run = cases(suite, "run")
    assert len(run) == 1 and failed(run[0])
    failure = run[0].find("failure")
    assert failure is not None
    assert failure.get("type") == "aborted"
    assert "burn rate above 14.4x" in failure.get("message", "")


def test_not_started_run_fails_with_the_refusal_and_its_before_check() -> None:
    suite = parse(build_report("not_started"))
    assert cases(suite, "criteria") == []
    assert cases(suite, "rollback") == []  # nothing was injected, nothing to take back
    checks = cases(suite, "steady_state")
    assert [c.get("name") for c in checks] == ["before: checkout_probe", "before: checkout_p99"]
    assert failed(checks[0]) and not failed(checks[1])
    run = cases(suite, "run")[0].find("failure")
    assert run is not None and "steady state not met" in run.get("message", "")
    assert suite.get("failures") == "2"


def test_rollback_incomplete_fails_the_rollback_case() -> None:
    suite = parse(build_report("rollback_incomplete"))
    rollback = cases(suite, "rollback")
    assert len(rollback) == 1 and failed(rollback[0])
    failure = rollback[0].find("failure")
    assert failure is not None and "chaosrunner recover" in failure.get("message", "")


def test_hostile_strings_are_escaped_and_control_characters_removed() -> None:
    report = build_report("failed", hypothesis='<tag a="b">&\x00\x1b]0;x\x07')
    report.criteria[0].detail = "]]><injected/>"
    raw = render_junit(report, classify_impact(report))
    root = ET.fromstring(raw)  # must parse
    hypothesis = [p.get("value") for p in root.iter("property") if p.get("name") == "hypothesis"]
    assert hypothesis == ['<tag a="b">&\ufffd\ufffd]0;x\ufffd']
    assert b"<injected/>" not in raw
    failure = root.find(".//testcase/failure")
    assert failure is not None and "]]><injected/>" in (failure.text or "")

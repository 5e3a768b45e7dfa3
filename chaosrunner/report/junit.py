"""`junit.xml`: the run as one JUnit test suite, for CI systems to show and gate on.

Test cases, in order:
- one per success criterion (`criteria`), failing with observed vs expected;
- one per steady-state check (`steady_state`: `before: slo`, `after: slo`);
- one per fault's rollback (`rollback`), failing when the fault was not taken back;
- one for the run itself (`run`), failing with the reason whenever the verdict is not
  `passed` — so a run that aborted or never started still fails the pipeline with a why.

Built with `xml.etree`, so every string is escaped; characters XML 1.0 cannot carry at all
(control characters) are replaced first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chaosrunner.errors import Verdict
from chaosrunner.report import facts
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import Impact

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def clean(value: object) -> str:
    """A string XML 1.0 can hold: control characters become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(value))


def render_junit(report: RunReport, impact: Impact) -> bytes:
    """The whole `junit.xml` as UTF-8 bytes with an XML declaration."""
    suite_name = f"chaosrunner.{report.experiment}"
    suite = ET.Element("testsuite", {"name": clean(suite_name)})
    _properties(suite, report, impact)
    _criteria_cases(suite, report)
    _check_cases(suite, report)
    _rollback_cases(suite, report)
    _run_case(suite, report, impact)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for case in cases if case.find("skipped") is not None)))
    suite.set("time", f"{facts.run_seconds(report) or 0.0:.3f}")
    suite.set("timestamp", clean(report.started_at))
    root = ET.Element("testsuites", {"name": "chaosrunner"})
    root.append(suite)
    for name in ("tests", "failures", "errors", "skipped", "time"):
        root.set(name, suite.get(name, "0"))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _case(suite: ET.Element, group: str, name: str, report: RunReport) -> ET.Element:
    return ET.SubElement(suite, "testcase", {
        "classname": clean(f"chaosrunner.{report.experiment}.{group}"),
        "name": clean(name), "time": "0"})


def _fail(case: ET.Element, message: str, kind: str, body: str | None = None) -> None:
    failure = ET.SubElement(case, "failure", {"message": clean(message), "type": clean(kind)})
    failure.text = clean(body if body is not None else message)


def _properties(suite: ET.Element, report: RunReport, impact: Impact) -> None:
    properties = ET.SubElement(suite, "properties")
    values = {"run_id": report.run_id, "verdict": report.verdict,
              "exit_code": str(report.exit_code), "environment": report.environment or "",
              "hypothesis": report.hypothesis or "", "severity": impact.level,
              "report_dir": report.report_dir or ""}
    for name, value in values.items():
        ET.SubElement(properties, "property", {"name": name, "value": clean(value)})


def _criteria_cases(suite: ET.Element, report: RunReport) -> None:
    for criterion in report.criteria:
        case = _case(suite, "criteria", criterion.text, report)
        if not criterion.judged:
            ET.SubElement(case, "skipped", {"message": clean(criterion.detail or "not judged")})
            continue
        if criterion.passed:
            continue
        observed = facts.format_value(criterion.observed, facts.criterion_unit(criterion))
        message = f"observed {observed}, expected {criterion.text}"
        body = message + (f"\n{criterion.detail}" if criterion.detail else "")
        _fail(case, message, "criterion", body)


def _check_cases(suite: ET.Element, report: RunReport) -> None:
    slos = facts.slo_by_name(report)
    for check in report.checks:
        case = _case(suite, "steady_state", f"{check.phase}: {check.slo}", report)
        if check.passed:
            continue
        info = slos.get(check.slo)
        observed = facts.format_value(check.observed, facts.slo_unit(info))
        message = (f"{check.slo} {check.phase} the faults: observed {observed}, "
                   f"expected {facts.target_text(info)}")
        body = message + (f"\n{check.detail}" if check.detail else "")
        _fail(case, message, "steady_state", body)


def _rollback_cases(suite: ET.Element, report: RunReport) -> None:
    for fault in report.faults:
        if fault.injected_at is None and fault.error is None:
            continue  # never attempted: nothing to take back
        case = _case(suite, "rollback", f"{fault.name} ({fault.action})", report)
        if fault.injected_at is not None and fault.reverted_at is None:
            _fail(case, f"fault {fault.name} on {', '.join(fault.targets) or 'its targets'} "
                  "was not taken back: run `chaosrunner recover`", Verdict.ROLLBACK_INCOMPLETE,
                  fault.error)
        elif fault.error:
            _fail(case, f"fault {fault.name}: {fault.error}", "driver_error")


def _run_case(suite: ET.Element, report: RunReport, impact: Impact) -> None:
    case = _case(suite, "run", f"verdict ({report.experiment})", report)
    if report.verdict is not Verdict.PASSED:
        reason = report.reason or (report.abort.reason if report.abort else None)
        message = f"{report.verdict}: {reason}" if reason else _default_reason(report)
        _fail(case, message, report.verdict)
    # After <failure>: the JUnit schema orders a test case's children that way.
    out = ET.SubElement(case, "system-out")
    out.text = clean(f"verdict: {report.verdict} (exit {report.exit_code})\n"
                     f"impact: {impact.summary()}\n"
                     f"reports: {report.report_dir or '-'}")


def _default_reason(report: RunReport) -> str:
    failed = [c.text for c in report.criteria if c.judged and not c.passed]
    if failed:
        return f"{report.verdict}: criteria not met: {'; '.join(failed)}"
    return f"{report.verdict} (exit {report.exit_code})"

"""`postmortem.md`: the seed's post-mortem template, filled with everything the run knows.

Written for the verdicts that ask for a look back: `failed` (the hypothesis was refuted),
`aborted` (a safety limit fired) and `rollback_incomplete` (a fault may still be in place —
the most incident-like outcome of all). Not for `passed`, `not_started` (nothing was
injected) or `interrupted` (a person chose to stop; faults were rolled back).

What a machine cannot know — why it happened, business impact, owners, due dates — is left
as a visible `_TODO: ..._` placeholder for a person to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chaosrunner.errors import Verdict
from chaosrunner.report import facts
from chaosrunner.report.markdown import code, table, text
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import SEVERITY_LEVELS, Impact
from chaosrunner.timestamps import parse_time, seconds_between


def todo(what: str) -> str:
    return f"_TODO: {what}_"


@dataclass(frozen=True)
class _Moment:
    at: str
    what: str
    rank: int = 0  # the causal order of moments recorded in the same millisecond


# Run started, phases up to the faults, injection and symptoms, the abort, the rollback and
# after phases it starts, the reverts, the restore, the end.
_RANK = {"start": 0, "phase": 1, "inject": 2, "abort": 3, "rollback": 4, "revert": 5,
         "restore": 6, "end": 7}


def render_postmortem(report: RunReport, impact: Impact) -> str:
    """The whole `postmortem.md` as a string."""
    sections = [_title(report), _summary(report, impact), _timeline(report),
                _root_cause(report), _impact(report, impact), _actions(report, impact),
                _lessons(report)]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _title(report: RunReport) -> list[str]:
    day = (parse_time(report.started_at) or parse_time(report.ended_at))
    date = day.strftime("%Y-%m-%d") if day else "unknown date"
    name = text(report.title or report.experiment)
    return [f"# Post-Mortem: {name} chaos experiment {report.verdict} - {date}", "",
            f"> Written by chaosrunner from run {code(report.run_id)}"
            f"{' in ' + text(report.environment) if report.environment else ''}. "
            "Everything below was measured; lines marked _TODO_ need a person. "
            "Blameless: describe systems, not people."]


def _summary(report: RunReport, impact: Impact) -> list[str]:
    faults_start, faults_end = facts.phase_span(report, "faults")
    fault_seconds = seconds_between(faults_start, faults_end)
    return ["## Summary",
            f"**Duration**: {facts.human_duration(facts.run_seconds(report))} for the whole "
            f"run; faults in place for {facts.human_duration(fault_seconds)}  ",
            f"**Impact**: {text(impact.summary())}  ",
            f"**Root Cause**: {_known_cause(report)} {todo('the underlying cause')}  ",
            f"**Hypothesis**: {text(report.hypothesis or '—')}  ",
            f"**Verdict**: {report.verdict} (exit {report.exit_code})"]


def _known_cause(report: RunReport) -> str:
    """The proximate cause the run can state on its own."""
    faults = ", ".join(f"{code(f.name)} ({code(f.action)} on {text(', '.join(f.targets))})"
                       for f in report.faults if f.injected_at) or "no fault"
    if report.verdict is Verdict.ROLLBACK_INCOMPLETE:
        stuck = ", ".join(code(f.name) for f in facts.unreverted_faults(report))
        return f"fault(s) {stuck or '?'} could not be taken back after injecting {faults}."
    if report.abort is not None:
        return f"injecting {faults} triggered an abort: {text(report.abort.reason)}."
    failed = [code(c.text) for c in report.criteria if c.judged and not c.passed]
    if failed:
        return f"under {faults}, success criteria were not met: {', '.join(failed)}."
    return f"under {faults}: {text(report.reason or report.verdict)}."


def _moments(report: RunReport) -> list[_Moment]:
    moments = [_Moment(report.started_at, "Run started", _RANK["start"])]
    for phase in report.phases:
        rank = _RANK["rollback" if phase.name in ("rollback", "after") else "phase"]
        moments.append(_Moment(phase.start, f"Phase {text(phase.name)} started", rank))
    for fault in report.faults:
        targets = text(", ".join(fault.targets) or "its targets")
        if fault.injected_at:
            moments.append(_Moment(fault.injected_at,
                                   f"Fault {code(fault.name)} ({code(fault.action)}) "
                                   f"injected on {targets}", _RANK["inject"]))
        if fault.reverted_at:
            moments.append(_Moment(fault.reverted_at, f"Fault {code(fault.name)} reverted",
                                   _RANK["revert"]))
    first_bad = facts.first_bad_sample(report)
    if first_bad is not None:
        moments.append(_Moment(first_bad.time,
                               f"Initial symptoms detected: {code(first_bad.slo)} missed its "
                               f"SLO ({_sample_value(report, first_bad.slo, first_bad.value)})",
                               _RANK["inject"]))
    if report.abort is not None:
        moments.append(_Moment(report.abort.at, f"Abort triggered (incident declared): "
                                                f"{text(report.abort.reason)}",
                                 _RANK["abort"]))
    restored = _restored_at(report)
    if restored:
        moments.append(_Moment(restored, f"Service fully restored (SLOs held again "
                                         f"{report.recovery_seconds:.1f} s after rollback)",
                                 _RANK["restore"]))
    if report.ended_at:
        moments.append(_Moment(report.ended_at, f"Run ended: {report.verdict}", _RANK["end"]))
    # By time to the millisecond; moments in the same millisecond in causal order (an
    # abort before the rollback and the reverts it causes).
    return sorted(moments, key=lambda moment: (facts.offset(report, moment.at) or 0.0,
                                               moment.rank))


def _restored_at(report: RunReport) -> str | None:
    if report.recovery_seconds is None:
        return None
    start, _ = facts.phase_span(report, "after")
    begin = parse_time(start)
    if begin is None:
        return None
    return (begin + timedelta(seconds=report.recovery_seconds)).isoformat()


def _sample_value(report: RunReport, slo: str, value: float | None) -> str:
    info = facts.slo_by_name(report).get(slo)
    return f"observed {facts.format_value(value, facts.slo_unit(info))}, " \
           f"target {facts.target_text(info)}"


def _timeline(report: RunReport) -> list[str]:
    day = parse_time(report.started_at)
    lines = ["## Timeline (All times in UTC)", ""]
    if day:
        lines[0] += f" — {day.strftime('%Y-%m-%d')}"
    lines += [f"- **{facts.clock(m.at)}** - {m.what}" for m in _moments(report)]
    lines.append(f"- {todo('add what people did and saw, if anyone was involved')}")
    return lines


def _root_cause(report: RunReport) -> list[str]:
    lines = ["## Root Cause Analysis", "### What Happened"]
    lines.append(f"The experiment tested the hypothesis: {text(report.hypothesis or '—')}")
    lines.append("")
    for fault in report.faults:
        if fault.injected_at:
            window = facts.human_duration(seconds_between(fault.injected_at,
                                                                fault.reverted_at))
            lines.append(f"- Fault {code(fault.name)} ({code(fault.action)}) on "
                         f"{text(', '.join(fault.targets) or '—')} for {window}"
                         f"{'; error: ' + text(fault.error) if fault.error else ''}")
    for criterion in report.criteria:
        observed = facts.format_value(criterion.observed, facts.criterion_unit(criterion))
        result = ("not judged" if not criterion.judged else
                  "met" if criterion.passed else "**not met**")
        lines.append(f"- Criterion {code(criterion.text)}: observed {observed} — {result}")
    for check in report.checks:
        if not check.passed:
            lines.append(f"- Steady state {text(check.phase)} the faults: {code(check.slo)} "
                         f"{_sample_value(report, check.slo, check.observed)} — **not met**")
    if report.abort is not None:
        lines.append(f"- Aborted: {text(report.abort.reason)}")
    lines += ["", todo("detailed technical explanation of the failure"),
              "", "### Why It Happened",
              f"- Immediate cause: {_known_cause(report)}",
              f"- Contributing factors: {todo('what made the system vulnerable to this fault')}",
              f"- Root cause: {todo('the underlying cause')}"]
    return lines


def _impact(report: RunReport, impact: Impact) -> list[str]:
    level = SEVERITY_LEVELS.get(impact.level)
    severity = (f"{impact.level} — {level['description']} (response time "
                f"{level['response_time']}; {level['escalation']})" if level else impact.level)
    lines = ["## Impact Assessment",
             f"- **Severity**: {text(severity)}",
             f"- **Users Affected**: {text(impact.summary())} — synthetic probe traffic; real "
             f"users in {text(report.environment or 'this environment')}: "
             f"{todo('number/percentage of real users affected, if any')}",
             f"- **Duration**: {_degraded(report)}",
             f"- **Business Impact**: {todo('revenue/reputation impact, if any')}",
             f"- **Error Budget**: {_budget_line(report)}"]
    return lines


def _degraded(report: RunReport) -> str:
    bad = [s for s in report.samples if s.good is False]
    if not bad:
        return "no sample missed its SLO"
    first, last = min(bad, key=lambda s: s.t), max(bad, key=lambda s: s.t)
    return (f"SLOs missed from {facts.clock(first.time)} to {facts.clock(last.time)} UTC "
            f"({facts.human_duration(last.t - first.t)}, {len(bad)} samples)")


def _budget_line(report: RunReport) -> str:
    if not report.budget:
        return "not tracked"
    parts = []
    for name, record in report.budget.items():
        consumed, before, after, _ = facts.budget_cells(record)
        parts.append(f"{code(name)} {consumed} consumed by this run's traffic (fault phase); "
                     f"remaining in the SLO window {before} before, {after} after")
    return "; ".join(parts)


def _actions(report: RunReport, impact: Impact) -> list[str]:
    priority = "High" if impact.level in ("SEV1", "SEV2") else "Medium"
    owner, due = todo("owner"), todo("YYYY-MM-DD")
    rows: list[list[str]] = []
    for fault in facts.unreverted_faults(report):
        rows.append([f"Take back fault {code(fault.name)} on "
                     f"{text(', '.join(fault.targets))}: run `chaosrunner recover`",
                     owner, "Critical", "now"])
    for criterion in report.criteria:
        if criterion.judged and not criterion.passed:
            rows.append([f"Find out why {code(criterion.text)} was not met", owner, priority,
                         due])
    if report.abort is not None:
        rows.append([f"Make the system withstand what triggered the abort "
                     f"({text(report.abort.reason)})", owner, priority, due])
    if _never_recovered(report):
        rows.append(["The SLOs did not hold again within the after phase: find what keeps "
                     "them down once the fault is removed", owner, priority, due])
    rerun = f" ({code('chaosrunner run ' + report.source)})" if report.source else ""
    rows.append([f"Re-run the experiment after the fix{rerun}", owner, "Medium", due])
    return ["## Action Items", "", *table(["Action", "Owner", "Priority", "Due Date"], rows)]


def _never_recovered(report: RunReport) -> bool:
    """A recovery action only when the run's own figures show no recovery: a measured
    recovery time (the SLOs held again) contradicts any "speed up recovery" item."""
    return report.recovery_seconds is None and any(
        not check.passed and check.phase == "after" for check in report.checks)


def _lessons(report: RunReport) -> list[str]:
    good: list[str] = []
    if report.abort is not None:
        good.append(f"The run stopped itself and rolled back at "
                    f"{facts.clock(report.abort.at)} UTC ({text(report.abort.reason)})")
    if report.faults and not facts.unreverted_faults(report):
        good.append("Every injected fault was rolled back")
    if report.recovery_seconds is not None:
        good.append(f"The SLOs held again {report.recovery_seconds:.1f} s after rollback")
    good += [f"Criterion {code(c.text)} was met" for c in report.criteria if c.passed]
    better = [f"Criterion {code(c.text)} was not met" for c in report.criteria
              if c.judged and not c.passed]
    better += [f"{code(c.slo)} did not hold {text(c.phase)} the faults"
               for c in report.checks if not c.passed]
    return ["## Lessons Learned", "### What Went Well",
            *[f"- {line}" for line in good or [todo("what went well")]],
            "", "### What Could Be Improved",
            *[f"- {line}" for line in better], f"- {todo('what could be improved')}",
            "", "### Prevention Measures", todo("specific changes to prevent recurrence")]

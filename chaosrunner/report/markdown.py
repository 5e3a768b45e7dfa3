"""`report.md`: the run in plain Markdown, readable in a terminal and rendered on GitHub.

Verdict and hypothesis first, then what decided the verdict (abort, criteria, steady-state
checks), then budget, faults and phases. Tables keep to GitHub-flavoured Markdown.
"""

from __future__ import annotations

import re

from chaosrunner.report import facts
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import Impact
from chaosrunner.timestamps import seconds_between


def text(value: object) -> str:
    """User text made safe for a Markdown line or table cell.

    Newlines would end a table row and `|` would split a cell; `<` before a letter would let
    GitHub read HTML; a backslash escape keeps each literal and still readable in a terminal.
    Comparisons such as `p99 < 2s` and names such as `checkout_probe` stay untouched.
    """
    raw = " ".join(str(value).split())
    raw = re.sub(r"([\\`*|])", r"\\\1", raw)
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", raw)


def code(value: object) -> str:
    """User text as an inline code span (names, criteria), safe against backticks."""
    raw = " ".join(str(value).split()).replace("|", "\\|")  # GFM splits cells even in code
    return f"`` {raw} ``" if "`" in raw else f"`{raw}`"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: RunReport, impact: Impact) -> str:
    """The whole `report.md` as a string."""
    sections = [_head(report, impact), _abort(report), _search(report), _criteria(report),
                _checks(report),
                _budget(report), _faults(report), _limits(report), _phases(report),
                _announced(report)]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _head(report: RunReport, impact: Impact) -> list[str]:
    verdict = report.verdict.upper().replace("_", " ")
    lines = [f"# {verdict}: {text(report.title or report.experiment)}", ""]
    lines.append(f"**Hypothesis:** {text(report.hypothesis) if report.hypothesis else '—'}")
    lines.append("")
    rows = [["Verdict", f"**{report.verdict}** (exit {report.exit_code}): "
                        f"{report.verdict.description}"],
            ["Experiment", code(report.experiment)],
            ["Run", code(report.run_id)]]
    if report.reason:
        rows.append(["Reason", text(report.reason)])
    if report.environment:
        rows.append(["Environment", text(report.environment)])
    if report.source:
        rows.append(["File", code(report.source)])
    rows += [["Started", facts.stamp(report.started_at)],
             ["Ended", facts.stamp(report.ended_at)],
             ["Duration", facts.human_duration(facts.run_seconds(report))],
             ["Impact", text(impact.summary())],
             ["Recovery time", _recovery(report)]]
    return lines + table(["", ""], rows)


def _recovery(report: RunReport) -> str:
    if report.recovery_seconds is None:
        return "not measured (the after phase did not confirm recovery)"
    return f"{report.recovery_seconds:.1f} s after rollback"


def _abort(report: RunReport) -> list[str]:
    abort = report.abort
    if abort is None:
        return []
    rows = [["Reason", text(abort.reason)],
            ["At", f"{facts.stamp(abort.at)} "
                   f"(t = {facts.human_duration(facts.abort_offset(report))})"]]
    if abort.slo:
        rows.append(["SLO", code(abort.slo)])
    rows.append(["Budget consumed by this run's traffic (fault phase, until the abort)",
                 facts.percent(abort.budget_consumed)])
    for window, rate in abort.burn_rates.items():
        rows.append([f"Burn rate {text(window)}", "unknown" if rate is None else f"{rate:.2f}x"])
    return ["## Abort", "", *table(["", ""], rows)]


def _criteria(report: RunReport) -> list[str]:
    lines = ["## Success criteria", ""]
    if not report.criteria:
        return [*lines, "_Not judged: the fault phase did not run._"]
    rows = [[_mark(c.passed) if c.judged else "not judged", code(c.text),
             facts.format_value(c.observed, facts.criterion_unit(c)),
             text(c.detail) if c.detail else ""] for c in report.criteria]
    return lines + table(["Result", "Criterion", "Observed", "Detail"], rows)


def _checks(report: RunReport) -> list[str]:
    lines = ["## Steady state", ""]
    if not report.checks:
        return [*lines, "_No steady-state checks were made._"]
    slos = facts.slo_by_name(report)
    rows = []
    for check in report.checks:
        info = slos.get(check.slo)
        rows.append([_mark(check.passed), text(check.phase), code(check.slo),
                     facts.format_value(check.observed, facts.slo_unit(info)),
                     facts.target_text(info), text(check.detail) if check.detail else ""])
    return lines + table(["Result", "Phase", "SLO", "Observed", "Target", "Detail"], rows)


def _budget(report: RunReport) -> list[str]:
    lines = ["## Error budget", ""]
    if not report.budget:
        return [*lines, "_No error budget was tracked._"]
    rows = [[code(name), *map(text, facts.budget_cells(record))]
            for name, record in report.budget.items()]
    return lines + table(list(facts.BUDGET_HEADER), rows)


def _faults(report: RunReport) -> list[str]:
    lines = ["## Faults", ""]
    if not report.faults:
        return [*lines, "_No faults were injected._"]
    rows = [[code(f.name), code(f.action), text(facts.fault_parameters(report, f)),
             text(", ".join(f.targets) or "—"),
             facts.stamp(f.injected_at) if f.injected_at else "not injected",
             facts.stamp(f.reverted_at) if f.reverted_at else
             ("**NOT REVERTED**" if f.injected_at else "—"),
             text(f.error) if f.error else ""] for f in report.faults]
    header = ["Fault", "Action", "Parameters", "Targets", "Injected", "Reverted", "Error"]
    return lines + table(header, rows)


def _limits(report: RunReport) -> list[str]:
    """The blast radius the run enforced and the abort policy its guard watched."""
    rows = [["Blast radius", text("; ".join(facts.blast_radius_lines(report)))],
            ["Abort policy", text("; ".join(facts.abort_policy_lines(report)))]]
    return ["## Limits", "", *table(["", ""], rows)]


def _phases(report: RunReport) -> list[str]:
    if not report.phases:
        return []
    rows = [[text(p.name), facts.clock(p.start), facts.clock(p.end),
             facts.human_duration(seconds_between(p.start, p.end))]
            for p in report.phases]
    return ["## Phases (UTC)", "", *table(["Phase", "Start", "End", "Duration"], rows)]


def _announced(report: RunReport) -> list[str]:
    """Where the run was announced (chaosrunner.observe) and its trace id."""
    if not report.announced and not report.trace_id:
        return []
    lines = ["## Announced", ""]
    if report.trace_id:
        lines += [f"Trace: {code(report.trace_id)}", ""]
    rows = [[text(a.channel), code(a.target), str(a.sent), str(a.failed), text(a.detail or "")]
            for a in report.announced]
    return lines + table(["Channel", "Where", "Sent", "Failed", "Detail"], rows)


def _mark(passed: bool) -> str:
    return "PASS" if passed else "**FAIL**"


def _search(report: RunReport) -> list[str]:
    found = report.search
    if not found:
        return []
    def rate(value: object) -> str:
        return "—" if value is None else f"{value:g}/s"
    lines = ["## Breaking point", "",
             f"- highest rate that held the SLOs: **{rate(found['held'])}** (delivered "
             f"{rate(found.get('held_delivered'))})",
             f"- rate that broke them: **{rate(found['broke'])}** (delivered "
             f"{rate(found.get('broke_delivered'))})"]
    if found.get("production") is not None:
        lines.append(f"- production now: {rate(found['production'])}; headroom "
                     f"{text(_percent(found.get('headroom')))} "
                     f"(×{found.get('headroom_factor') or 0:g})")
    if found.get("stop_seconds") is not None:
        lines.append(f"- load stopped {found['stop_seconds']:g}s after the guard aborted "
                     f"({found.get('step_to_stop_seconds')}s after the breaking step began)")
    if found.get("note"):
        lines.append(f"- {text(found['note'])}")
    rows = [[f"{s['rate']:g}/s", f"{s['started']:g}s", rate(s["delivered"]),
             _percent(s.get("failed")), _mark(bool(s["held"]))] for s in found["steps"]]
    return [*lines, "", *table(["asked", "from", "delivered", "load failed", "held"], rows)]


def _percent(value: object) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.0%}"

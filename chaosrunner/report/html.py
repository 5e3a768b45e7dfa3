"""`report.html`: one self-contained page a person opens the morning after a run.

No scripts, no fonts, no fetches: styles are inline, charts are inline SVG
(`chaosrunner.report.chart`), the journal folds with `<details>`. A Content-Security-Policy
forbids scripts and any network load, so even a string that escaped escaping could not run.
Every string from the user or the run goes through `html.escape`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from html import escape
from typing import Any

from chaosrunner.report import facts
from chaosrunner.report.chart import ChartInput, Window, render_chart
from chaosrunner.report.model import RunReport
from chaosrunner.report.severity import Impact
from chaosrunner.timestamps import seconds_between

JOURNAL_LIMIT = 1000  # events listed in the page; the full stream is in journal.jsonl

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1f2328;background:#f6f8fa}
main{max-width:1000px;margin:0 auto;padding:16px 20px 40px;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:600;
letter-spacing:.03em}
.passed{background:#1a7f37}.failed,.rollback_incomplete{background:#cf222e}
.aborted{background:#bc4c00}.not_started,.invalid,.interrupted{background:#6e7781}
.hypothesis{font-size:16px;margin:10px 0;padding:8px 12px;border-left:4px solid #0969da;
background:#f6f8fa}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.facts th{width:160px}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.abortbox{border:1px solid #cf222e;background:#fff5f5;padding:8px 12px;border-radius:4px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eff1f3;padding:1px 4px;
border-radius:3px;word-break:normal;overflow-wrap:normal}code .w{white-space:nowrap}
figure{margin:10px 0 18px}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg .plot{fill:#fff;stroke:#d0d7de}svg .grid{stroke:#eaeef2}
svg .tick,svg .plabel,svg .wlabel,svg .tlabel,svg .alabel,svg .empty{font:11px sans-serif;
fill:#57606a}
svg .series{fill:none;stroke:#0969da;stroke-width:1.4;stroke-linejoin:round}
svg .dot{fill:#0969da}
svg .target{stroke:#1a7f37;stroke-width:1.2;stroke-dasharray:6 4}svg .tlabel{fill:#1a7f37}
svg .fault{fill:#fb8500;fill-opacity:.16;stroke:#fb8500;stroke-opacity:.5}
svg .fault.open{fill:#cf222e;fill-opacity:.14;stroke:#cf222e;stroke-dasharray:4 3}
svg .wlabel{fill:#9a3f00}
svg text{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .nodata{fill:#8c959f;fill-opacity:.28}
svg .bad{fill:#cf222e}svg .phase{stroke:#8c959f;stroke-dasharray:2 3}
svg .abort{stroke:#cf222e;stroke-width:2}svg .alabel{fill:#cf222e;font-weight:600}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#57606a}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
details{margin-top:8px}summary{cursor:pointer;font-weight:600}
.journal td{font:12px ui-monospace,Menlo,monospace}
.muted{color:#57606a}
"""

_LEGEND = (
    '<p class="legend"><span><i style="background:#0969da;height:2px"></i>SLI value</span>'
    '<span><i style="border-top:2px dashed #1a7f37;height:0"></i>target</span>'
    '<span><i style="background:#fb8500;opacity:.35"></i>fault in place</span>'
    '<span><i style="background:#cf222e;opacity:.3"></i>fault not reverted</span>'
    '<span><i style="background:#8c959f;opacity:.5"></i>no data</span>'
    '<span><i style="background:#cf222e;height:4px"></i>sample missed SLO</span>'
    '<span><i style="background:#cf222e;width:2px"></i>abort</span></p>')


def e(value: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return escape(str(value), quote=True)


def render_html(report: RunReport, impact: Impact) -> str:
    """The whole `report.html` as a string."""
    title = report.title or report.experiment
    body = "".join([
        _head(report, impact), _abort(report), _search(report), _charts(report),
        _criteria(report), _checks(report), _budget(report), _faults(report), _limits(report),
        _phases(report), _announced(report), _journal(report),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(report.verdict)}: {e(title)} · chaosrunner</title>"
        f"<style>{_STYLE}</style></head><body><main>{body}"
        f'<p class="muted">chaosrunner run {e(report.run_id)}</p></main></body></html>\n')


def code(value: object) -> str:
    """User text as code that wraps only between words and after a `/`, never inside a
    word: each word is a no-wrap span, with a <wbr> after each `/` of a path or URL."""
    pieces = re.split(r"(\s+)", str(value))
    html = []
    for piece in pieces:
        if not piece:
            continue
        if piece.isspace():
            html.append(" ")
            continue
        parts = [part for part in re.split(r"(?<=/)", piece) if part]
        html.append("<wbr>".join(f'<span class="w">{e(part)}</span>' for part in parts))
    return f"<code>{''.join(html)}</code>"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """A table; header labels are ours, cells must already be escaped HTML."""
    head = "".join(f"<th>{e(label)}</th>" for label in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    css_attr = f' class="{css}"' if css else ""
    return f"<table{css_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _mark(passed: bool) -> str:
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def _head(report: RunReport, impact: Impact) -> str:
    verdict = report.verdict
    rows = [("Verdict", f"{e(verdict)} (exit {report.exit_code}): "
                        f"{e(verdict.description)}"),
            ("Experiment", code(report.experiment))]
    if report.reason:
        rows.append(("Reason", e(report.reason)))
    if report.environment:
        rows.append(("Environment", e(report.environment)))
    if report.source:
        rows.append(("File", code(report.source)))
    rows += [("Started", e(facts.stamp(report.started_at))),
             ("Ended", e(facts.stamp(report.ended_at))),
             ("Duration", e(facts.human_duration(facts.run_seconds(report)))),
             ("Impact", f"<strong>{e(impact.summary())}</strong>"),
             ("Recovery time", e(f"{report.recovery_seconds:.1f} s after rollback"
                                 if report.recovery_seconds is not None else "not measured"))]
    facts_rows = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    hypothesis = e(report.hypothesis) if report.hypothesis else "<em>no hypothesis given</em>"
    return (f'<header><span class="verdict {e(verdict)}">{e(verdict.upper())}</span>'
            f"<h1>{e(report.title or report.experiment)}</h1>"
            f'<p class="hypothesis"><strong>Hypothesis:</strong> {hypothesis}</p>'
            f'<table class="facts">{facts_rows}</table></header>')


def _abort(report: RunReport) -> str:
    abort = report.abort
    if abort is None:
        return ""
    rates = ", ".join(f"{e(window)}: {'unknown' if rate is None else f'{rate:.2f}x'}"
                      for window, rate in abort.burn_rates.items())
    slo = f" on {code(abort.slo)}" if abort.slo else ""
    return (f'<h2>Abort</h2><div class="abortbox"><strong>{e(abort.reason)}</strong><br>'
            f"at {e(facts.stamp(abort.at))}{slo}; budget consumed by this run's traffic "
            f"{e(facts.percent(abort.budget_consumed))}"
            f"{'; burn rates ' + rates if rates else ''}</div>")


def _charts(report: RunReport) -> str:
    series = facts.samples_by_slo(report)
    if not series:
        return ""
    slos = facts.slo_by_name(report)
    faults = fault_bands(report)
    phases = [(phase.name, t, facts.offset(report, phase.end)) for phase in report.phases
              if (t := facts.offset(report, phase.start)) is not None]
    figures = []
    for slo, samples in series.items():
        chart = ChartInput(slo=slo, info=slos.get(slo), samples=samples, faults=faults,
                           phases=phases, abort_at=facts.abort_offset(report),
                           t_end=facts.run_seconds(report))
        target = facts.target_text(slos.get(slo))
        figures.append(f'<figure id="chart-{e(slo)}"><figcaption>{code(slo)} '
                       f'<span class="muted">target {e(target)}</span></figcaption>'
                       f"{render_chart(chart)}</figure>")
    return "<h2>SLI timelines</h2>" + _LEGEND + "".join(figures)


def fault_bands(report: RunReport) -> list[Window]:
    """One band per fault, however many targets it hit: from its first injection to its
    last revert (open while any target's is not taken back), labelled `name ×N`."""
    spans: dict[str, list[tuple[float, float | None]]] = {}
    for fault in report.faults:
        window = facts.fault_window(report, fault)
        if window is not None:
            spans.setdefault(fault.name, []).append(window)
    bands = []
    for name, windows in spans.items():
        ends = [end for _, end in windows]
        end = None if None in ends else max(end for end in ends if end is not None)
        label = name if len(windows) == 1 else f"{name} ×{len(windows)}"
        bands.append(Window(min(start for start, _ in windows), end, label))
    return bands


def _criteria(report: RunReport) -> str:
    if not report.criteria:
        return "<h2>Success criteria</h2><p class=\"muted\">Not judged: no fault phase.</p>"
    rows = [(_mark(c.passed) if c.judged else '<span class="muted">not judged</span>',
             code(c.text),
             e(facts.format_value(c.observed, facts.criterion_unit(c))), e(c.detail or ""))
            for c in report.criteria]
    return "<h2>Success criteria</h2>" + _table(
        ["Result", "Criterion", "Observed", "Detail"], rows)


def _checks(report: RunReport) -> str:
    if not report.checks:
        return ""
    slos = facts.slo_by_name(report)
    rows = []
    for check in report.checks:
        info = slos.get(check.slo)
        rows.append((_mark(check.passed), e(check.phase), code(check.slo),
                     e(facts.format_value(check.observed, facts.slo_unit(info))),
                     e(facts.target_text(info)), e(check.detail or "")))
    return "<h2>Steady state</h2>" + _table(
        ["Result", "Phase", "SLO", "Observed", "Target", "Detail"], rows)


def _budget(report: RunReport) -> str:
    if not report.budget:
        return ""
    rows = [(code(name), *map(e, facts.budget_cells(r)))
            for name, r in report.budget.items()]
    return "<h2>Error budget</h2>" + _table(list(facts.BUDGET_HEADER), rows)


def _faults(report: RunReport) -> str:
    if not report.faults:
        return "<h2>Faults</h2><p class=\"muted\">No faults were injected.</p>"
    rows = []
    for f in report.faults:
        reverted = (e(facts.stamp(f.reverted_at)) if f.reverted_at else
                    '<span class="fail">NOT REVERTED</span>' if f.injected_at else "—")
        rows.append((code(f.name), code(f.action),
                     e(facts.fault_parameters(report, f)), e(", ".join(f.targets) or "—"),
                     e(facts.stamp(f.injected_at)) if f.injected_at else "not injected",
                     reverted, e(f.error or "")))
    return "<h2>Faults</h2>" + _table(
        ["Fault", "Action", "Parameters", "Targets", "Injected", "Reverted", "Error"], rows)


def _limits(report: RunReport) -> str:
    """The blast radius the run enforced and the abort policy its guard watched."""
    def items(lines: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>"
    return ("<h2>Limits</h2><table class=\"facts\"><tr><th>Blast radius</th><td>"
            f"{items(facts.blast_radius_lines(report))}</td></tr><tr><th>Abort policy</th>"
            f"<td>{items(facts.abort_policy_lines(report))}</td></tr></table>")


def _announced(report: RunReport) -> str:
    """Where the run was announced (chaosrunner.observe), the trace id linked."""
    if not report.announced and not report.trace_id:
        return ""
    rows = []
    for a in report.announced:
        detail = e(a.detail or "")
        if a.link and a.link.startswith(("http://", "https://")):
            detail = f'<a href="{e(a.link)}">{detail or e(a.link)}</a>'
        rows.append((e(a.channel), code(a.target), e(a.sent), e(a.failed),
                     detail))
    trace = ""
    if report.trace_id:
        link = next((a.link for a in report.announced if a.channel == "otlp" and a.link), None)
        shown = code(report.trace_id)
        if link and link.startswith(("http://", "https://")):
            shown = f'<a href="{e(link)}">{shown}</a>'
        trace = f"<p>Trace: {shown}</p>"
    return "<h2>Announced</h2>" + trace + _table(
        ["Channel", "Where", "Sent", "Failed", "Detail"], rows)


def _phases(report: RunReport) -> str:
    if not report.phases:
        return ""
    rows = [(e(p.name), e(facts.clock(p.start)), e(facts.clock(p.end)),
             e(facts.human_duration(seconds_between(p.start, p.end))))
            for p in report.phases]
    return "<h2>Phases (UTC)</h2>" + _table(["Phase", "Start", "End", "Duration"], rows)


def journal_excerpt(events: list[dict[str, Any]], limit: int = JOURNAL_LIMIT
                    ) -> list[dict[str, Any]]:
    """The events the page lists: all of them when few; else every event but the periodic
    samples (the charts show those); and if still too many, the first and last ones."""
    if len(events) <= limit:
        return events
    shown = [event for event in events if _event_kind(event) != "sample"]
    if len(shown) > limit:
        shown = shown[:limit // 2] + shown[-(limit // 2):]
    return shown


def _journal(report: RunReport) -> str:
    events = report.events
    shown = journal_excerpt(events)
    rows = [(e(_event_time(event)), e(_event_kind(event)),
             e(json.dumps(event, default=str, ensure_ascii=False))) for event in shown]
    note = (f'<p class="muted">{len(events) - len(shown)} events (samples first) are left '
            "out here; journal.jsonl has them all.</p>" if len(shown) < len(events) else "")
    return (f"<h2>Event journal</h2><details><summary>{len(events)} events</summary>{note}"
            + _table(["Time", "Event", "Data"], rows, "journal") + "</details>")


def _event_time(event: dict[str, Any]) -> str:
    for key in ("time", "at", "ts", "timestamp"):
        if isinstance(event.get(key), str):
            return facts.clock(str(event[key]))
    return ""


def _event_kind(event: dict[str, Any]) -> str:
    for key in ("event", "type", "kind", "name"):
        if key in event:
            return str(event[key])
    return ""


def _search(report: RunReport) -> str:
    found = report.search
    if not found:
        return ""
    def rate(value: object) -> str:
        return "—" if not isinstance(value, int | float) else f"{value:g}/s"
    facts = [f"highest rate that held the SLOs: <b>{e(rate(found['held']))}</b> (delivered "
             f"{e(rate(found.get('held_delivered')))})",
             f"rate that broke them: <b>{e(rate(found['broke']))}</b> (delivered "
             f"{e(rate(found.get('broke_delivered')))})"]
    if isinstance(found.get("headroom"), int | float):
        facts.append(f"production now {e(rate(found['production']))}, headroom "
                     f"{found['headroom']:.0%}")
    if found.get("stop_seconds") is not None:
        facts.append(f"load stopped {e(found['stop_seconds'])}s after the guard aborted")
    if found.get("note"):
        facts.append(e(found["note"]))
    rows = [[e(rate(s["rate"])), e(f"{s['started']:g}s"), e(rate(s["delivered"])),
             e("—" if s.get("failed") is None else f"{s['failed']:.1%}"),
             _mark(bool(s["held"]))] for s in found["steps"]]
    return ("<section><h2>Breaking point</h2><ul>" + "".join(f"<li>{f}</li>" for f in facts)
            + "</ul>" + _table(["asked", "from", "delivered", "load failed", "held"], rows)
            + "</section>")

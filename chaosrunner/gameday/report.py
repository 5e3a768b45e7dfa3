"""The game-day report: `gameday.json`, `gameday.md`, `gameday.html` (self-contained).

Each links the experiments' own report directories (`01-<name>/report.html`), which sit
beside it, so the whole game-day directory can be archived or served as it is. The HTML
page has no scripts and no fetches (a Content-Security-Policy forbids both), and every
string from a file or a run is escaped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaosrunner.errors import Verdict
from chaosrunner.report import facts
from chaosrunner.report.html import e
from chaosrunner.report.markdown import code, table, text
from chaosrunner.report.writer import _json_text, _write

VERDICT_RULE = (f"worst verdict of the experiments that ran: {Verdict.ranking()}; exit code "
                "of that experiment")


@dataclass
class ExperimentOutcome:
    """One experiment of a game day: a row of the report."""

    index: int
    file: str
    experiment: str
    status: str = "skipped"  # ran | skipped
    verdict: Verdict | None = None
    exit_code: int | None = None
    run_id: str | None = None
    report_dir: str | None = None
    link: str | None = None  # the report directory relative to the game-day directory
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    reason: str | None = None
    abort_reason: str | None = None
    criteria_passed: int = 0
    criteria_total: int = 0
    budget: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def shown_verdict(self) -> str:
        return self.verdict if self.status == "ran" and self.verdict else "skipped"

    @property
    def max_consumed(self) -> float | None:
        values = [b["consumed"] for b in self.budget.values() if b.get("consumed") is not None]
        return max(v for v in values if v is not None) if values else None


@dataclass
class GameDayReport:
    """What `gameday.json` holds."""

    name: str
    run_id: str
    verdict: Verdict
    exit_code: int
    started_at: str
    ended_at: str | None
    duration_seconds: float | None
    reason: str | None
    source: str
    description: str | None
    schedule: str | None
    stop_on: str
    min_budget_remaining: float | None
    report_dir: str
    trigger: str  # cli | schedule
    experiments: list[ExperimentOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict_rule: str = VERDICT_RULE
    halted: str | None = None  # the halt that ended the day

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def write_gameday_reports(report: GameDayReport, directory: Path) -> list[Path]:
    """Write the three files into `directory` (atomically, like the run reports)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _write(directory / "gameday.json", _json_text(report.to_json()).encode()),
        _write(directory / "gameday.md", render_markdown(report).encode()),
        _write(directory / "gameday.html", render_html(report).encode()),
    ]


# --- Markdown --------------------------------------------------------------------------------


def render_markdown(report: GameDayReport) -> str:
    """The whole `gameday.md`."""
    lines = [f"# Game day {text(report.name)}: {report.verdict.upper()}", ""]
    lines += table(["", ""], [[k, v] for k, v in _facts(report, code, text)])
    lines += ["", "## Experiments", ""]
    rows = []
    for o in report.experiments:
        name = code(o.experiment)
        if o.link:
            name = f"[{text(o.experiment)}]({_url(o.link)}/report.md)"
        rows.append([str(o.index), name, o.shown_verdict,
                     "" if o.exit_code is None else str(o.exit_code),
                     facts.human_duration(o.duration_seconds),
                     _criteria_text(o), facts.percent(o.max_consumed),
                     text(o.reason or "")])
    lines += table(["#", "Experiment", "Verdict", "Exit", "Duration", "Criteria",
                    "Budget consumed", "Reason"], rows)
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {text(note)}" for note in report.notes]
    lines += ["", f"Overall verdict: {VERDICT_RULE}.", ""]
    return "\n".join(lines)


def _facts(report: GameDayReport, as_code: Any, as_text: Any) -> list[tuple[str, str]]:
    """Label/value pairs of the report head; values made safe by the given functions."""
    rows = [("Verdict", f"{as_text(report.verdict)} (exit {report.exit_code}): "
                        f"{as_text(report.verdict.description)}")]
    if report.reason:
        rows.append(("Reason", as_text(report.reason)))
    if report.description:
        rows.append(("Description", as_text(report.description)))
    rows += [("File", as_code(report.source)),
             ("Schedule", as_code(report.schedule) if report.schedule else "none"),
             ("Started by", as_text(report.trigger)),
             ("stop_on", as_code(report.stop_on)),
             ("min_budget_remaining", facts.percent(report.min_budget_remaining)
              if report.min_budget_remaining is not None else "not set"),
             ("Started", facts.stamp(report.started_at)),
             ("Ended", facts.stamp(report.ended_at)),
             ("Duration", facts.human_duration(report.duration_seconds)),
             ("Game day run", as_code(report.run_id))]
    return rows


def _criteria_text(outcome: ExperimentOutcome) -> str:
    if outcome.status != "ran" or not outcome.criteria_total:
        return "—"
    return f"{outcome.criteria_passed}/{outcome.criteria_total} met"


def _url(link: str) -> str:
    # Directory names come from experiment names ([A-Za-z0-9_.-]); quote anyway.
    from urllib.parse import quote

    return quote(link)


# --- HTML ------------------------------------------------------------------------------------

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:16px 20px 40px;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.verdict{display:inline-block;padding:2px 8px;border-radius:4px;color:#fff;font-weight:600;
font-size:12px;letter-spacing:.03em}
.passed{background:#1a7f37}.failed,.rollback_incomplete{background:#cf222e}
.aborted{background:#bc4c00}.not_started,.invalid,.interrupted,.skipped{background:#6e7781}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.facts th{width:190px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eff1f3;padding:1px 4px;
border-radius:3px;word-break:break-all}
.muted{color:#57606a}
"""


def render_html(report: GameDayReport) -> str:
    """The whole `gameday.html`."""
    facts_rows = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>"
                         for k, v in _facts(report, _code, e))
    notes = ""
    if report.notes:
        notes = "<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) \
            + "</ul>"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(report.verdict)}: game day {e(report.name)} · chaosrunner</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        f'<header>{_badge(report.verdict)}<h1>Game day {e(report.name)}</h1>'
        f'<table class="facts">{facts_rows}</table></header>'
        f"<h2>Experiments</h2>{_experiments_table(report)}{notes}"
        f'<p class="muted">Overall verdict: {e(VERDICT_RULE)}.</p>'
        "</main></body></html>\n")


def _code(value: object) -> str:
    return f"<code>{e(value)}</code>"


def _badge(verdict: str) -> str:
    return f'<span class="verdict {e(verdict)}">{e(verdict.upper())}</span>'


def _experiments_table(report: GameDayReport) -> str:
    header = ["#", "Experiment", "Verdict", "Exit", "Duration", "Criteria",
              "Budget consumed", "Reason", "Reports"]
    rows = []
    for o in report.experiments:
        links = "—"
        if o.link:
            base = e(_url(o.link))
            links = (f'<a href="{base}/report.html">report</a> · '
                     f'<a href="{base}/report.md">md</a> · '
                     f'<a href="{base}/report.json">json</a>')
        reason = e(o.reason or "")
        if o.file != o.experiment:
            reason = f'<span class="muted">{e(o.file)}</span><br>{reason}'
        cells = [str(o.index), _code(o.experiment), _badge(o.shown_verdict),
                 "" if o.exit_code is None else str(o.exit_code),
                 e(facts.human_duration(o.duration_seconds)), e(_criteria_text(o)),
                 e(facts.percent(o.max_consumed)), reason, links]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

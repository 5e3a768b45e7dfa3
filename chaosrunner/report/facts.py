"""Facts every report writer needs, derived once from a `RunReport`.

Times in `RunReport` are UTC ISO-8601 strings; charts need seconds since the run started
and people need `HH:MM:SS UTC`. Values need units: a ratio SLO reads as a percentage, a
latency statistic as milliseconds or seconds. These helpers keep every writer consistent.
"""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

from chaosrunner.report.model import (
    BudgetRecord,
    CriterionResult,
    FaultRecord,
    RunReport,
    Sample,
    SLOInfo,
)
from chaosrunner.spec.criteria import tokenize
from chaosrunner.spec.models import LATENCY_STATS
from chaosrunner.spec.units import DURATION, shorten_middle
from chaosrunner.timestamps import parse_time, seconds_between

_DURATION_SUFFIXES = ("us", "µs", "ms", "s", "m", "h", "d")


def clock(text: str | None) -> str:
    """`HH:MM:SS.mmm` in UTC, or an em dash when unknown. To the millisecond, as recorded:
    moments within one second (an abort, the rollback, the revert) read in their order."""
    moment = parse_time(text)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[11:23] if moment else "—"


def stamp(text: str | None) -> str:
    """`YYYY-MM-DD HH:MM:SS.mmm UTC`, or an em dash when unknown."""
    moment = parse_time(text)
    return f"{moment.astimezone(UTC).strftime('%Y-%m-%d')} {clock(text)} UTC" if moment else "—"


def offset(report: RunReport, text: str | None) -> float | None:
    """Seconds from the run's start to `text` (the `t` axis of the charts)."""
    start, moment = parse_time(report.started_at), parse_time(text)
    if start is None or moment is None:
        return None
    return (moment - start).total_seconds()


def human_duration(seconds: float | None) -> str:
    """`1h 2m 3s`, `4m 5s`, `2.5 s`; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def percent(value: float | None, digits: int = 3) -> str:
    """0.99953 -> `99.953%`; trailing zeros dropped; `unknown` for None."""
    if value is None or not math.isfinite(value):
        return "unknown"
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


BUDGET_HEADER = ("SLO", "Consumed by this run's traffic (fault phase)",
                 "Remaining in the SLO window before", "Remaining after (estimate)",
                 "Burn rate (fault phase)")


def budget_cells(record: BudgetRecord) -> tuple[str, str, str, str]:
    """The figures of one budget row, each named for what it is (docs/budget.md)."""
    consumed = percent(record.consumed)
    if record.consumed_over:
        consumed += f" over {human_duration(record.consumed_over)}"
    before, after = percent(record.remaining_before), percent(record.remaining_after)
    coverage = record.coverage_text()
    if coverage and record.remaining_before is not None:
        before += f" (partial: {coverage})"
        after += " (partial)"
    burn = "unknown" if record.burn_rate is None else f"{record.burn_rate:.2f}x"
    return consumed, before, after, burn


def latency(seconds: float) -> str:
    if abs(seconds) < 1:
        return f"{seconds * 1000:.4g} ms"
    return f"{seconds:.4g} s"


def number(value: float | None) -> str:
    if value is None:
        return "no data"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def slo_unit(info: SLOInfo | None) -> str:
    """`ratio`, `seconds` or `number`: how values of this SLO read."""
    if info is None:
        return "number"
    if info.is_ratio:
        return "ratio"
    if (info.stat or "") in LATENCY_STATS:
        return "seconds"
    return "number"


def format_value(value: float | None, unit: str) -> str:
    """A value in its unit: `99.5%`, `512 ms`, `3.2`; `no data` for None."""
    if value is None:
        return "no data"
    if not math.isfinite(value):
        return str(value)
    if unit == "ratio":
        return percent(value)
    if unit == "seconds":
        return latency(value)
    return number(value)


def slo_by_name(report: RunReport) -> dict[str, SLOInfo]:
    return {info.name: info for info in report.slos}


def target_text(info: SLOInfo | None) -> str:
    """`>= 99%`, `< 500 ms`: the SLO's own condition."""
    if info is None:
        return "—"
    return f"{info.op} {format_value(info.target, slo_unit(info))}"


def criterion_unit(criterion: CriterionResult) -> str:
    """The unit of a criterion's observed value, read from how its threshold was written."""
    try:
        tokens = tokenize(criterion.text)
    except ValueError:
        return "number"
    raw = tokens[-1][1] if tokens and tokens[-1][0] == "value" else ""
    if raw.endswith("%"):
        return "ratio"
    if raw.endswith(_DURATION_SUFFIXES):
        return "seconds"
    return "number"


def samples_by_slo(report: RunReport) -> dict[str, list[Sample]]:
    """Samples grouped per SLO, in time order; SLOs without samples keep an empty list."""
    grouped: dict[str, list[Sample]] = {info.name: [] for info in report.slos}
    for sample in report.samples:
        grouped.setdefault(sample.slo, []).append(sample)
    for series in grouped.values():
        series.sort(key=lambda sample: sample.t)
    return grouped


def phase_span(report: RunReport, name: str) -> tuple[str | None, str | None]:
    """Start and end of the first phase called `name` (None when it never ran)."""
    for phase in report.phases:
        if phase.name == name:
            return phase.start, phase.end
    return None, None


def run_seconds(report: RunReport) -> float | None:
    return seconds_between(report.started_at, report.ended_at)


def fault_window(report: RunReport, fault: FaultRecord) -> tuple[float, float | None] | None:
    """Seconds since start when the fault was in place; end None while not taken back."""
    start = offset(report, fault.injected_at)
    if start is None:
        return None
    return start, offset(report, fault.reverted_at)


def abort_offset(report: RunReport) -> float | None:
    if report.abort is None:
        return None
    if report.abort.t is not None:
        return report.abort.t
    return offset(report, report.abort.at)


def first_bad_sample(report: RunReport) -> Sample | None:
    """The first sample during the fault phase that missed its SLO (initial symptoms)."""
    bad = [sample for sample in report.samples
           if sample.phase == "faults" and sample.good is False]
    return min(bad, key=lambda sample: sample.t) if bad else None


def unreverted_faults(report: RunReport) -> list[FaultRecord]:
    """Faults injected and not (provably) taken back."""
    return [fault for fault in report.faults
            if fault.injected_at is not None and fault.reverted_at is None]


def _seconds(value: object) -> str:
    return f"{value:g} s" if isinstance(value, int | float) else str(value)


def _mapping_text(values: dict[str, Any]) -> str:
    def shown(value: object) -> str:  # a long body or header map, shortened in the middle
        text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        duration = DURATION.match(text)
        if duration:  # 500ms reads "500 ms", as everywhere in the reports
            return f"{duration.group(1)} {duration.group(2)}"
        return shorten_middle(text, PARAM_WIDTH)
    return ", ".join(f"{key}: {shown(value)}" for key, value in values.items())


PARAM_WIDTH = 80  # characters of one parameter's value in a report


def fault_parameters(report: RunReport, fault: FaultRecord) -> str:
    """`latency: 500ms; from 0 s into the fault phase, until its end` — the fault's
    `with:` as the user wrote it, what the action does, and when it was in place."""
    plan = report.fault_plan.get(fault.name)
    if plan is None:  # a report without the plan (a Chaos Toolkit run, an old report)
        return _mapping_text(fault.params) or "—"
    parts = [_mapping_text(dict(plan.get("with") or {}))]
    if fault.action.endswith(".pause"):
        parts.insert(0, "SIGSTOP, then SIGCONT" if fault.action.startswith("process.")
                     else "frozen, then unfrozen")
    timing = f"from {_seconds(plan.get('at') or 0)} into the fault phase"
    if plan.get("for") is not None:
        timing += f", for {_seconds(plan['for'])}"
    else:
        timing += ", until its end"
    select = plan.get("select")
    if select not in (None, "all"):
        timing += f"; select {_mapping_text(select) if isinstance(select, dict) else select}"
    return "; ".join(part for part in (*parts, timing) if part)


def blast_radius_lines(report: RunReport) -> list[str]:
    """The blast radius the run enforced, one limit per line."""
    radius = report.blast_radius
    if not radius:
        return ["not recorded"]
    lines = []
    if radius.get("default"):
        lines.append("no blast_radius written: the default ceiling applies")
    if radius.get("per_fault"):
        lines.append("one instance per fault")
    if radius.get("max_targets") is not None and not radius.get("per_fault"):
        count = radius["max_targets"]
        lines.append(f"at most {count} target{'s' if count != 1 else ''} in all")
    if radius.get("max_percent") is not None:
        lines.append(f"at most {percent(radius['max_percent'])} of a selector's matches")
    if radius.get("namespaces"):
        lines.append("namespaces " + ", ".join(map(str, radius["namespaces"])))
    return lines or ["no limit"]


def abort_policy_lines(report: RunReport) -> list[str]:
    """The abort conditions the guard watched, one per line."""
    policy = report.abort_policy
    lines = []
    for limit in policy.get("error_budget") or []:
        slo = limit.get("slo")
        if limit.get("burn_rate") is not None:
            windows = " and ".join(_seconds(w) for w in limit.get("windows") or [])
            lines.append(f"{slo} burn rate above {limit['burn_rate']:g}x over {windows}")
        if limit.get("max_consumed") is not None:
            lines.append(f"{slo}: this run consumes more than "
                         f"{percent(limit['max_consumed'])} of the error budget")
    if policy.get("min_budget_remaining") is not None:
        lines.append(f"less than {percent(policy['min_budget_remaining'])} of the error "
                     "budget left")
    alerts = policy.get("alerts")
    if alerts:
        source = alerts.get("alertmanager") or alerts.get("prometheus")
        matchers = ", ".join(alerts.get("matchers") or []) or "any alert"
        lines.append(f"an alert firing in {source} ({matchers})")
    return lines or ["no abort policy: the run is stopped only by a signal, a halt or a "
                     "driver error"]

"""What a run knows at its end: the one model every report writer reads.

`RunReport.to_json()` is `report.json` (DESIGN.md 5). Times are UTC ISO-8601 strings;
`t` fields are seconds since the run started (for charts).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from chaosrunner.errors import Verdict
from chaosrunner.slo.budget import WindowBurn


@dataclass
class Phase:
    name: str  # plan | before | faults | rollback | after
    start: str
    end: str | None = None


@dataclass
class FaultRecord:
    name: str
    action: str
    targets: list[str]
    injected_at: str | None = None
    reverted_at: str | None = None
    error: str | None = None
    key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    time: str
    t: float
    phase: str
    slo: str
    value: float | None
    good: bool | None  # None: no data
    stats: dict[str, float] = field(default_factory=dict)
    events_good: float | None = None
    events_total: float | None = None


@dataclass
class CriterionResult:
    text: str
    observed: float | None
    passed: bool
    detail: str | None = None
    judged: bool = True  # False: the run was interrupted before it could be judged


@dataclass
class CheckResult:
    """A steady-state check (before or after) of one SLO."""

    phase: str
    slo: str
    observed: float | None
    passed: bool
    detail: str | None = None


@dataclass
class AbortRecord:
    reason: str
    at: str
    budget_consumed: float | None = None
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    slo: str | None = None
    t: float | None = None


@dataclass
class BudgetRecord:
    """One SLO's budget in a run (docs/budget.md, "A run's figures").

    `consumed`: share of the SLO window's budget spent by this run's fault-phase samples
    (`consumed_over` seconds of them, at `burn_rate` on average): the guard's figure, the
    abort's too. `remaining_before`: budget left in the SLO window before the run, from
    Prometheus, over `window_held` of the `window` seconds (`partial` when less);
    `remaining_after` = remaining_before - consumed.
    """

    slo: str
    consumed: float | None
    remaining_before: float | None = None
    remaining_after: float | None = None
    burn_rate: float | None = None
    consumed_over: float | None = None
    window: float | None = None
    window_held: float | None = None
    partial: bool = False

    def coverage_text(self) -> str:
        """'over 3 min of the 1 h window' when the remaining budget is partial, else ''."""
        if self.window is None or self.window_held is None or not self.partial:
            return ""
        return WindowBurn(self.window, None, self.window_held).coverage_text()


@dataclass
class SLOInfo:
    name: str
    kind: str
    target: float
    op: str
    is_ratio: bool
    window: float
    stat: str | None = None


@dataclass
class Announcement:
    """One place the run was announced (a notification target, Grafana, a trace, metrics).

    `target` is for display and never holds a secret; `sent`/`failed` count messages.
    """

    channel: str  # notify | grafana | otlp | metrics | pushgateway
    target: str
    sent: int = 0
    failed: int = 0
    detail: str | None = None
    link: str | None = None


@dataclass
class RunReport:
    verdict: Verdict
    exit_code: int
    experiment: str
    run_id: str
    started_at: str
    ended_at: str | None = None
    title: str | None = None
    hypothesis: str | None = None
    environment: str | None = None
    source: str | None = None
    reason: str | None = None
    phases: list[Phase] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    criteria: list[CriterionResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    abort: AbortRecord | None = None
    budget: dict[str, BudgetRecord] = field(default_factory=dict)
    recovery_seconds: float | None = None
    slos: list[SLOInfo] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    report_dir: str | None = None
    announced: list[Announcement] = field(default_factory=list)
    trace_id: str | None = None
    search: dict[str, Any] | None = None  # a breaking-point search (chaosrunner.load.search)
    # What the run was told to do, as written (report.facts words them):
    # fault name -> {"with": {...}, "at": s, "for": s | None, "select": ...}
    fault_plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the blast radius enforced: max_targets, max_percent, namespaces, per_fault, default
    blast_radius: dict[str, Any] = field(default_factory=dict)
    abort_policy: dict[str, Any] = field(default_factory=dict)  # the file's `abort:`
    # The steady-state file's incident_severity (report/severity.py): sev1_at, sev2_above,
    # min_seconds, capped_at, and incident_environment (this run's environment is one)
    severity_policy: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """report.json as a dict. Built field by field: `dataclasses.asdict` deep-copies
        every sample and took a second for a one-hour run."""
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        data.pop("events")
        return data


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: item if isinstance(item, _SCALARS) else _plain(item)
                for key, item in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return {key: item if isinstance(item, _SCALARS) else _plain(item)
                for key, item in vars(value).items()}
    return value

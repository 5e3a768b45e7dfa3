"""What a run comes to: its verdict, the reason, the success criteria, the budget it
spent, and the `RunReport` every writer reads. Pure functions of what the run recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaosrunner.drivers.base import Handle
from chaosrunner.engine.control import RunState
from chaosrunner.engine.guard import BudgetGuard
from chaosrunner.engine.observe import SampleBook, evaluate_criterion
from chaosrunner.engine.plan import effective_radius, is_production
from chaosrunner.errors import Verdict
from chaosrunner.report.model import (
    BudgetRecord,
    CheckResult,
    CriterionResult,
    FaultRecord,
    Phase,
    RunReport,
    Sample,
    SLOInfo,
)
from chaosrunner.secrets import redact_data
from chaosrunner.slo.budget import WindowBurn
from chaosrunner.spec.validate import ExperimentBundle

NOT_JUDGED = "not judged: interrupted"


def verdict(state: RunState, criteria: Sequence[CriterionResult], dry_run: bool) -> Verdict:
    """The verdict, worst cause first (DESIGN.md 4)."""
    if state.rollback_failed:
        return Verdict.ROLLBACK_INCOMPLETE
    if state.signal is not None:
        return Verdict.INTERRUPTED
    if state.verdict is not None:
        return state.verdict
    if state.abort is not None:
        return Verdict.ABORTED
    if dry_run:
        return Verdict.PASSED
    if state.recovered is False or not all(c.passed for c in criteria):
        return Verdict.FAILED
    return Verdict.PASSED


def criteria(state: RunState, bundle: ExperimentBundle,
             book: SampleBook) -> list[CriterionResult]:
    """The success criteria over the fault phase's readings; none when no fault went in."""
    if state.verdict is not None or not state.injected_any:
        return []
    if state.signal is not None:  # cut short by the operator: neither met nor missed
        return [CriterionResult(c.text, None, False, NOT_JUDGED, judged=False)
                for c in bundle.experiment.success_criteria]
    return [evaluate_criterion(c, bundle.slos[c.slo], book.readings("faults", c.slo))
            for c in bundle.experiment.success_criteria]


def reason(state: RunState, verdict: Verdict) -> str | None:
    """Why the run ended as it did, in one line."""
    if state.reason:
        return state.reason
    if verdict is Verdict.ROLLBACK_INCOMPLETE:
        return "rollback incomplete: " + "; ".join(state.rollback_failed)
    if verdict is Verdict.INTERRUPTED:
        return f"interrupted by {state.signal}; rolled back"
    if state.abort is not None:
        return state.abort.reason
    if verdict is Verdict.FAILED and state.recovered is False:
        return "the SLOs did not hold again within steady_state.after"
    if verdict is Verdict.FAILED:
        return "success criteria not met"
    return None


def budget_records(bundle: ExperimentBundle, guard: BudgetGuard,
                   budget_before: Mapping[str, float | None],
                   budget_window: Mapping[str, WindowBurn | None]) -> dict[str, BudgetRecord]:
    """Per SLO with a budget: consumed by this run's fault-phase samples (the guard's
    figure, computed once) and the remaining budget of the SLO window before the run,
    with how much of the window Prometheus held."""
    records: dict[str, BudgetRecord] = {}
    for name, slo in bundle.slos.items():
        meter = guard.meter(name)
        if slo.budget is None or meter is None:
            continue
        before = budget_before.get(name)
        period = budget_window.get(name)
        records[name] = BudgetRecord(
            name, round(meter.consumed, 9), before,
            None if before is None else before - meter.consumed,
            burn_rate=meter.mean_burn, consumed_over=round(meter.observed, 3),
            window=slo.window, window_held=None if period is None else period.held,
            partial=period is not None and period.partial)
    return records


def search(run: RunRecord) -> dict[str, Any] | None:
    """A breaking-point search's outcome (`search:` experiments), else None."""
    if run.bundle.experiment.search is None:
        return None
    # Imported here: only search experiments need the load package.
    from chaosrunner.load.search import search_outcome

    return search_outcome(run.bundle, list(run.handles), run.state.abort, run.started_at)


@dataclass(frozen=True)
class RunRecord:
    """Everything a finished run recorded, as `build_report` needs it."""

    bundle: ExperimentBundle
    run_id: str
    started_at: str
    ended_at: str
    state: RunState
    phases: list[Phase]
    faults: list[FaultRecord]
    samples: list[Sample]
    book: SampleBook
    checks: list[CheckResult]
    budget_before: Mapping[str, float | None]
    budget_window: Mapping[str, WindowBurn | None]
    guard: BudgetGuard
    handles: Sequence[tuple[FaultRecord, Handle]]
    events: list[dict[str, Any]]
    dry_run: bool


def build_report(run: RunRecord) -> RunReport:
    """The run's `RunReport`, with every resolved secret redacted."""
    experiment = run.bundle.experiment
    results = criteria(run.state, run.bundle, run.book)
    decided = verdict(run.state, results, run.dry_run)
    return redact_data(RunReport(
        verdict=decided, exit_code=decided.exit_code_for(run.state.signal),
        experiment=experiment.name, run_id=run.run_id, started_at=run.started_at,
        ended_at=run.ended_at, title=experiment.title, hypothesis=experiment.hypothesis,
        environment=experiment.environment, source=str(run.bundle.path),
        reason=reason(run.state, decided), phases=run.phases, faults=run.faults,
        samples=run.samples, criteria=results, checks=run.checks, abort=run.state.abort,
        budget=budget_records(run.bundle, run.guard, run.budget_before, run.budget_window),
        recovery_seconds=run.state.recovery_seconds,
        slos=[SLOInfo(n, s.sli.kind, s.target, s.op, s.is_ratio, s.window, s.sli.stat)
              for n, s in run.bundle.slos.items()],
        events=run.events, search=search(run), **settings(run.bundle)))


def severity_policy(bundle: ExperimentBundle) -> dict[str, Any]:
    """The steady-state file's incident_severity, with whether this run's environment is
    one where incidents are declared (its `environments`, else the production names)."""
    policy = bundle.steady_state.incident_severity
    environment = bundle.experiment.environment
    declared = (is_production(environment) if policy.environments is None else
                environment.strip().lower() in {e.strip().lower() for e in policy.environments})
    return {"sev1_at": policy.sev1_at, "sev2_above": policy.sev2_above,
            "min_seconds": policy.min_duration, "capped_at": policy.capped_at,
            "incident_environment": declared}


def settings(bundle: ExperimentBundle) -> dict[str, Any]:
    """What the run was told to do, for the reports: each fault's `with:`, `at`, `for` and
    `select` as written, the blast radius enforced and the `abort:` policy."""
    experiment = bundle.experiment
    radius = effective_radius(bundle)
    plan = {f.name: {"with": dict(f.with_), "at": f.at, "for": f.for_,
                     "select": f.select if isinstance(f.select, str)
                     else f.select.model_dump(mode="json")}
            for f in experiment.faults}
    abort = experiment.abort.model_dump(exclude_none=True, exclude_defaults=True)
    abort["error_budget"] = [  # durations in seconds, as everywhere in report.json
        {"slo": limit.slo, "burn_rate": limit.burn_rate, "max_consumed": limit.max_consumed,
         "windows": list(limit.windows)} for limit in experiment.abort.budget_limits]
    return {"fault_plan": plan, "abort_policy": abort,
            "severity_policy": severity_policy(bundle),
            "blast_radius": {key: value for key, value in vars(radius).items()
                             if value is not None}}

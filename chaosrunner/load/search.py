"""The outcome of a breaking-point search (`search:` in an experiment).

The searched load.http fault steps its rate up (start, × factor every `step`, to the
ceiling) while the error-budget guard watches. The step running when the guard aborted
is the breaking point; the step before it is the highest rate that held. Which step ran
when, and how much traffic it really delivered, comes from the Locust process's status
lines, not from the schedule: Locust's start-up time does not skew the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chaosrunner.drivers.base import Handle
from chaosrunner.errors import ChaosRunnerError
from chaosrunner.load.capacity import prometheus_for
from chaosrunner.load.driver import read_status
from chaosrunner.report.model import AbortRecord, FaultRecord
from chaosrunner.spec.models import PromQuery, SearchSpec
from chaosrunner.spec.validate import ExperimentBundle


@dataclass
class StepResult:
    rate: float
    started: float  # seconds after the load started
    delivered: float | None  # requests per second the target really got asked
    held: bool
    saturated: bool = False  # delivered under 90% of asked: the target (or Locust) is full
    failed: float | None = None  # share of the load's own requests that failed


@dataclass
class SearchOutcome:
    rates: list[float]
    steps: list[StepResult] = field(default_factory=list)
    held: float | None = None  # highest rate (asked) that held the SLOs
    broke: float | None = None  # the rate (asked) at which the guard aborted
    held_delivered: float | None = None  # what Locust really sent in those steps
    broke_delivered: float | None = None
    saturated_from: float | None = None  # first asked rate the target could not take
    production: float | None = None
    headroom: float | None = None  # 1 - production / held
    headroom_factor: float | None = None  # held / production
    stop_seconds: float | None = None  # guard abort -> Locust stopped
    step_to_stop_seconds: float | None = None  # the breaking step began -> Locust stopped
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def search_outcome(bundle: ExperimentBundle, faults: Sequence[tuple[FaultRecord, Handle]],
                   abort: AbortRecord | None, started_at: str) -> dict[str, Any] | None:
    """report.json's `search`, or None when the experiment has no search."""
    experiment = bundle.experiment
    spec, fault = experiment.search, experiment.search_fault()
    if spec is None or fault is None:
        return None
    outcome = SearchOutcome(rates=list(spec.rates()))
    handle = next((h for r, h in faults if r.name == fault.name and "status" in h.data), None)
    if handle is None:
        outcome.note = "the load never started"
        return outcome.to_json()
    lines = [x for x in read_status(Path(str(handle.data["status"]))) if "state" in x]
    breaking = abort if abort is not None and abort.slo is not None else None
    _judge_steps(outcome, lines, _wall(breaking.at) if breaking else None)
    if outcome.saturated_from is not None:
        outcome.note = (f"from {outcome.saturated_from:g}/s on, less than 90% of the asked "
                        "rate was delivered (the target answered too slowly for the users, or "
                        "Locust ran out of CPU): the delivered rates are the real load. ")
    if abort is not None and breaking is None:
        outcome.note += f"aborted for another reason ({abort.reason}): no breaking point"
    elif breaking is None:
        outcome.note += (f"held up to {outcome.held:g}/s, the highest rate reached; raise "
                         "ceiling to find the breaking point. " if outcome.held else "")
    _production(outcome, spec, bundle, started_at)
    outcome.note = outcome.note.strip()
    return outcome.to_json()


def _judge_steps(outcome: SearchOutcome, lines: Sequence[Mapping[str, Any]],
                 abort_at: float | None) -> None:
    running = [x for x in lines if x["state"] == "running"]
    if not running:
        return
    t0 = float(running[0]["t"])
    by_step: dict[int, list[Mapping[str, Any]]] = {}
    for line in running:
        by_step.setdefault(int(line["step"]), []).append(line)
    broke_step = None
    if abort_at is not None:
        before = [x for x in running if float(x["t"]) <= abort_at] or running[:1]
        broke_step = int(before[-1]["step"])
    for index, step_lines in sorted(by_step.items()):
        if broke_step is not None and index > broke_step:
            break
        held = broke_step is None or index < broke_step
        asked, delivered = float(step_lines[0]["rate"]), _delivered(step_lines)
        outcome.steps.append(StepResult(
            rate=asked, started=round(float(step_lines[0]["t"]) - t0, 3), delivered=delivered,
            held=held, saturated=delivered is not None and delivered < 0.9 * asked,
            failed=_failed(step_lines)))
    held_steps = [s for s in outcome.steps if s.held]
    if held_steps:
        outcome.held, outcome.held_delivered = held_steps[-1].rate, held_steps[-1].delivered
    if broke_step is not None:
        outcome.broke = outcome.rates[broke_step]
        outcome.broke_delivered = outcome.steps[-1].delivered if outcome.steps else None
    outcome.saturated_from = next((s.rate for s in outcome.steps if s.saturated), None)
    stopped = [x for x in lines if x["state"] == "stopped"]
    if abort_at is not None and stopped:
        outcome.stop_seconds = round(float(stopped[-1]["t"]) - abort_at, 3)
        if broke_step is not None and broke_step in by_step:
            outcome.step_to_stop_seconds = round(
                float(stopped[-1]["t"]) - float(by_step[broke_step][0]["t"]), 3)


def _delivered(lines: Sequence[Mapping[str, Any]]) -> float | None:
    if len(lines) < 2:
        return None
    span = float(lines[-1]["t"]) - float(lines[0]["t"])
    count = int(lines[-1]["requests"]) - int(lines[0]["requests"])
    return round(count / span, 2) if span > 0 else None


def _failed(lines: Sequence[Mapping[str, Any]]) -> float | None:
    sent = int(lines[-1]["requests"]) - int(lines[0]["requests"])
    failures = int(lines[-1].get("failures", 0)) - int(lines[0].get("failures", 0))
    return round(failures / sent, 4) if sent > 0 else None


def _wall(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()


def _production(outcome: SearchOutcome, spec: SearchSpec, bundle: ExperimentBundle,
                started_at: str) -> None:
    if isinstance(spec.production, float | int):
        outcome.production = float(spec.production)
    elif isinstance(spec.production, PromQuery):
        # Evaluated at the run's start: our own load is not in it.
        try:
            prometheus = prometheus_for(bundle.steady_state, spec.production.url)
            try:
                outcome.production = prometheus.instant(spec.production.query,
                                                        at=_wall(started_at))
            finally:
                prometheus.close()
        except ChaosRunnerError as exc:
            outcome.note += f"production rate not read from Prometheus: {exc}. "
    capacity = outcome.held_delivered or outcome.held  # what the system really served
    if outcome.production and capacity:
        outcome.headroom_factor = round(capacity / outcome.production, 3)
        outcome.headroom = round(1 - outcome.production / capacity, 4)

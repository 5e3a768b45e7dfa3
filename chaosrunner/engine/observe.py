"""Samples per phase, and the judgements made from them: steady-state checks and criteria.

Defaults (DESIGN.md 2.2): a ratio SLO is judged on its ratio over the phase (events
weighted when the source counts them); a threshold SLO on its worst sample; a probe
statistic (`checkout_probe.p99`) on the pooled raw latencies of the phase, never on an
average of per-sample percentiles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from chaosrunner.report.model import CheckResult, CriterionResult
from chaosrunner.slo.latency import latency_stat
from chaosrunner.slo.sources.base import Reading
from chaosrunner.spec.models import SLO, Criterion, compare


class SampleBook:
    """Readings per phase and SLO, in order."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, list[Reading]]] = defaultdict(lambda: defaultdict(list))

    def add(self, phase: str, slo: str, reading: Reading) -> None:
        self._data[phase][slo].append(reading)

    def readings(self, phase: str, slo: str) -> list[Reading]:
        return list(self._data.get(phase, {}).get(slo, []))


def phase_ratio(readings: Sequence[Reading]) -> float | None:
    """Good share over a phase: event-weighted when counts exist, else the mean value."""
    counted = [r for r in readings if r.good is not None and r.total is not None]
    total = sum(r.total or 0.0 for r in counted)
    if counted and total > 0:
        return sum(r.good or 0.0 for r in counted) / total
    values = [r.value for r in readings if r.value is not None]
    return sum(values) / len(values) if values else None


def worst(values: Sequence[float], op: str) -> float:
    if op in ("<", "<="):
        return max(values)
    if op in (">", ">="):
        return min(values)
    return max(values)


def observe(slo: SLO, readings: Sequence[Reading], stat: str | None, op: str) -> float | None:
    """The value a phase shows for `slo` (or one of its statistics)."""
    effective = stat or (slo.sli.effective_stat if slo.sli.kind == "http" else None)
    if effective is not None and effective != "availability":
        pooled = [latency for r in readings for latency in r.latencies]
        return latency_stat(pooled, effective) if pooled else None
    if slo.is_ratio or effective == "availability":
        return phase_ratio(readings)
    values = [r.value for r in readings if r.value is not None]
    return worst(values, op) if values else None


def check_steady(phase: str, name: str, slo: SLO, readings: Sequence[Reading]) -> CheckResult:
    """Does the SLO hold over a phase?"""
    values = [r.value for r in readings if r.value is not None]
    if not values:
        return CheckResult(phase, name, None, False, "no data")
    if not slo.is_ratio and slo.objective is not None:
        share = sum(1 for v in values if slo.holds(v)) / len(values)
        return CheckResult(phase, name, worst(values, slo.op), share >= slo.objective,
                           f"{share:.1%} of samples met {slo.op} {slo.target:g}")
    observed = observe(slo, readings, None, slo.op)
    if observed is None:
        return CheckResult(phase, name, None, False, "no data")
    holds = slo.holds(observed)
    detail = f"observed {observed:.4g}, needs {slo.op} {slo.target:g}"
    notes = [r.note for r in readings if r.note]
    if not holds and notes:
        detail += f"; {notes[-1]}"
    return CheckResult(phase, name, observed, holds, detail)


def evaluate_criterion(criterion: Criterion, slo: SLO,
                       readings: Sequence[Reading]) -> CriterionResult:
    observed = observe(slo, readings, criterion.stat, criterion.op)
    if observed is None:
        return CriterionResult(criterion.text, None, False, "no data in the fault phase")
    passed = compare(observed, criterion.op, criterion.value)
    return CriterionResult(criterion.text, observed, passed,
                           f"observed {observed:.4g}, needs {criterion.op} {criterion.value:g}")


def sample_good(slo: SLO, reading: Reading) -> bool | None:
    if reading.value is None:
        return None
    return slo.holds(reading.value)

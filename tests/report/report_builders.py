"""Realistic `RunReport`s built in code, shaped like the engine's: the report tests and
`bench/report_bench.py` share them.

A run: `before` seconds of steady state, a fault phase with one latency fault, rollback,
`after` seconds of recovery; two SLOs from probe traffic (availability, a ratio, and p99
latency, a threshold), sampled every `interval` seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from chaosrunner.errors import Verdict
from chaosrunner.report.model import (
    AbortRecord,
    BudgetRecord,
    CheckResult,
    CriterionResult,
    FaultRecord,
    Phase,
    RunReport,
    Sample,
    SLOInfo,
)

START = datetime(2024, 5, 14, 10, 0, 0, tzinfo=UTC)
PROBE_RATE = 20  # probe requests per second


def iso(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def probe_slo(name: str = "checkout_probe") -> SLOInfo:
    return SLOInfo(name=name, kind="http", target=0.99, op=">=", is_ratio=True,
                   window=30 * 86400, stat="availability")


def latency_slo(name: str = "checkout_p99") -> SLOInfo:
    return SLOInfo(name=name, kind="http", target=0.5, op="<", is_ratio=False,
                   window=30 * 86400, stat="p99")


def _failure_share(verdict: str, t_in_faults: float) -> float:
    """Share of probe requests failing at a moment of the fault phase."""
    if verdict == "passed":
        return 0.0 if int(t_in_faults) % 17 else 0.05  # a rare blip
    if verdict == "failed":
        return 0.12 if int(t_in_faults) % 3 else 0.0  # 8 % overall: SEV3
    return 1.0  # aborted / rollback_incomplete: the fault takes the service down


def _sample(slo: SLOInfo, t: float, phase: str, verdict: str, fault_t: float | None,
            index: int) -> Sample:
    share = _failure_share(verdict, fault_t) if fault_t is not None else 0.0
    total = PROBE_RATE
    good = round(total * (1 - share))
    if slo.is_ratio:
        value: float | None = good / total
        ok = value >= slo.target
        events: dict[str, Any] = {"events_good": float(good), "events_total": float(total)}
        stats = {"availability": value}
    else:
        wobble = 0.02 * math.sin(index / 7)
        value = 0.12 + wobble + (0.9 if share >= 0.5 else 0.3 * share * 10)
        ok = value < slo.target
        events, stats = {}, {"p99": value, "p50": value / 3}
    return Sample(time=iso(t), t=t, phase=phase, slo=slo.name, value=value, good=ok,
                  stats=stats, **events)


def build_report(verdict: str = "passed", *, interval: float = 1.0, before: float = 30.0,
                 duration: float = 120.0, after: float = 30.0,
                 slos: list[SLOInfo] | None = None, hypothesis: str | None = None,
                 title: str | None = None, gap: bool = True) -> RunReport:
    """A finished run with the given verdict (passed, failed, aborted, not_started,
    rollback_incomplete, interrupted)."""
    slos = slos or [probe_slo(), latency_slo()]
    report = RunReport(
        verdict=Verdict(verdict), exit_code=Verdict(verdict).exit_code, experiment="payments-latency",
        run_id="payments-latency-20240514T100000Z", started_at=iso(0),
        title=title or "Checkout tolerates 500 ms latency to payments",
        hypothesis=hypothesis or "System should handle 500ms latency gracefully",
        environment="staging", source="experiments/network-latency.yaml", slos=slos,
        report_dir="reports/payments-latency-20240514T100000Z")
    if verdict == "not_started":
        return _not_started(report, before, interval)
    fault_end = duration if verdict not in ("aborted", "rollback_incomplete") else 20.0
    t0, t1 = before, before + fault_end
    rollback_end = t1 + 0.4
    end = rollback_end + after
    report.phases = [Phase("plan", iso(0), iso(0.1)), Phase("before", iso(0.1), iso(t0)),
                     Phase("faults", iso(t0), iso(t1)),
                     Phase("rollback", iso(t1), iso(rollback_end)),
                     Phase("after", iso(rollback_end), iso(end))]
    report.ended_at = iso(end + 0.2)
    _fill_samples(report, verdict, interval, (t0, t1, end), gap)
    _fill_outcome(report, verdict, t0, t1, rollback_end)
    return report


def _phase_at(t: float, t0: float, t1: float) -> str:
    return "before" if t < t0 else "faults" if t < t1 else "after"


def _fill_samples(report: RunReport, verdict: str, interval: float,
                  times: tuple[float, float, float], gap: bool) -> None:
    t0, t1, end = times
    steps = int(end / interval)
    for index in range(steps):
        t = round(index * interval, 3)
        phase = _phase_at(t, t0, t1)
        fault_t = t - t0 if phase == "faults" else None
        for slo in report.slos:
            sample = _sample(slo, t, phase, verdict, fault_t, index)
            if gap and phase == "faults" and 5 <= (fault_t or 0) < 8:
                sample.value, sample.good, sample.stats = None, None, {}
                sample.events_good = sample.events_total = None
            report.samples.append(sample)
        report.events.append({"time": iso(t), "event": "sample", "t": t, "phase": phase})


def _fill_outcome(report: RunReport, verdict: str, t0: float, t1: float,
                  rollback_end: float) -> None:
    stuck = verdict == "rollback_incomplete"
    report.faults = [FaultRecord(
        name="slow-payments", action="toxiproxy.latency", targets=["payments"],
        injected_at=iso(t0 + 0.05), reverted_at=None if stuck else iso(t1 + 0.3),
        error="toxiproxy API refused the delete: 503" if stuck else None,
        key="slow-payments/payments", params={"latency": 0.5})]
    fault_samples = [s for s in report.samples if s.phase == "faults" and s.slo ==
                     "checkout_probe" and s.value is not None]
    ratio = sum(s.events_good or 0 for s in fault_samples) / max(
        1.0, sum(s.events_total or 0 for s in fault_samples))
    worst_p99 = max((s.value for s in report.samples if s.phase == "faults"
                     and s.slo == "checkout_p99" and s.value is not None), default=None)
    report.criteria = [
        CriterionResult("checkout_probe >= 99%", ratio, ratio >= 0.99),
        CriterionResult("checkout_p99 < 2s", worst_p99, (worst_p99 or 0) < 2.0)]
    recovered = verdict != "rollback_incomplete"
    report.checks = [CheckResult(phase, slo.name, 1.0 if slo.is_ratio else 0.13,
                                 phase == "before" or recovered)
                     for phase in ("before", "after") for slo in report.slos]
    consumed = (1 - ratio) / 0.01 * (t1 - t0) / (30 * 86400)
    report.budget = {"checkout_probe": BudgetRecord("checkout_probe", consumed,
                                                    remaining_before=None,
                                                    remaining_after=None,
                                                    burn_rate=(1 - ratio) / 0.01)}
    report.recovery_seconds = 2.5 if recovered else None
    if verdict in ("aborted", "rollback_incomplete"):
        report.abort = AbortRecord(
            reason="burn rate above 14.4x on both windows (1m: 100.00x, 5m: 100.00x)",
            at=iso(t1), budget_consumed=consumed, burn_rates={"1m": 100.0, "5m": 100.0},
            slo="checkout_probe", t=t1)
        report.reason = report.abort.reason
    if verdict == "failed":
        report.reason = "success criteria not met: checkout_probe >= 99%"
    if stuck:
        report.reason = "fault slow-payments could not be taken back; run chaosrunner recover"
    report.events += [{"time": iso(t0 + 0.05), "event": "fault.injected",
                       "fault": "slow-payments"},
                      {"time": iso(rollback_end), "event": "phase", "phase": "after"}]


def _not_started(report: RunReport, before: float, interval: float) -> RunReport:
    report.phases = [Phase("plan", iso(0), iso(0.1)), Phase("before", iso(0.1), iso(before))]
    report.ended_at = iso(before + 0.1)
    for index in range(int(before / interval)):
        t = index * interval
        for slo in report.slos:
            value = 0.95 if slo.is_ratio else 0.2
            good = value >= slo.target if slo.is_ratio else value < slo.target
            report.samples.append(Sample(iso(t), t, "before", slo.name, value, good,
                                         events_good=19.0 if slo.is_ratio else None,
                                         events_total=20.0 if slo.is_ratio else None))
    report.checks = [CheckResult("before", "checkout_probe", 0.95, False,
                                 "steady state not met before any fault"),
                     CheckResult("before", "checkout_p99", 0.2, True)]
    report.faults = [FaultRecord("slow-payments", "toxiproxy.latency", ["payments"])]
    report.reason = "steady state not met before faults: checkout_probe observed 95% (>= 99%)"
    report.events = [{"time": iso(0), "event": "run.started"},
                     {"time": iso(before), "event": "run.refused", "reason": report.reason}]
    return report

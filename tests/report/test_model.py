from __future__ import annotations

import json
from dataclasses import asdict

from chaosrunner.errors import Verdict
from chaosrunner.report.model import (
    AbortRecord,
    BudgetRecord,
    CriterionResult,
    FaultRecord,
    Phase,
    RunReport,
    Sample,
)


def test_to_json_is_the_whole_report_minus_the_journal() -> None:
    report = RunReport(verdict=Verdict.ABORTED, exit_code=2, experiment="x", run_id="r",
                       started_at="2026-01-01T00:00:00.000Z",
                       phases=[Phase("plan", "a", "b")],
                       faults=[FaultRecord("f", "fake.down", ["api-1"], "a", "b",
                                           params={"nested": {"k": [1, 2]}})],
                       samples=[Sample("t", 1.0, "faults", "slo", None, None,
                                       stats={"p99": 0.2})],
                       criteria=[CriterionResult("slo >= 99%", 0.5, False)],
                       abort=AbortRecord("burn", "t", 0.01, {"1m": 20.0}),
                       budget={"slo": BudgetRecord("slo", 0.01, None, None)},
                       events=[{"event": "phase"}])
    data = report.to_json()
    expected = asdict(report)
    expected.pop("events")
    assert data == expected and "events" not in data
    assert json.loads(json.dumps(data)) == data
    data["faults"][0]["params"]["nested"]["k"].append(3)  # a copy, not the report's own
    assert report.faults[0].params["nested"]["k"] == [1, 2]

"""Issue 12.3: one rule for the after-phase. The after check judges the samples from the
moment the SLOs held again (the recovery streak) on; a slow first sample after the
rollback does not make a recovered run's after check fail."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from chaosrunner.engine.context import RunOptions
from chaosrunner.report.writer import write_reports
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_run

STEADY = fake_steady_state(latency=False)


def slow_first_after_sample(world: World) -> Any:
    reads = {"after": 0}

    def value(w: World) -> float:
        if any(kind == "revert" for kind, _ in w.log):
            reads["after"] += 1
            return 0.5 if reads["after"] == 1 else 1.0
        return 0.75 if w.down else 1.0

    return value


def test_a_recovered_run_passes_its_after_check_in_every_output(
        world: World, write_experiment: Any, tmp_path: Path) -> None:
    run = fake_run(write_experiment(duration="2s", steady=STEADY), world,
                   RunOptions(state_dir=tmp_path / "state", seed=1),
                   value=slow_first_after_sample(world))
    report = asyncio.run(run.execute())
    assert report.verdict == "passed", report.reason
    assert report.recovery_seconds is not None
    after = [c for c in report.checks if c.phase == "after"]
    assert after and all(c.passed for c in after), after
    report.report_dir = str(tmp_path / "r")
    write_reports(report, tmp_path / "r")
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    assert suite.get("failures") == "0"
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "FAIL" not in markdown.split("## Steady state")[1].split("\n## ")[0]


def test_a_run_that_never_recovers_fails_its_after_check(
        world: World, write_experiment: Any, tmp_path: Path) -> None:
    run = fake_run(write_experiment(duration="2s", steady=STEADY), world,
                   RunOptions(state_dir=tmp_path / "state", seed=1),
                   value=lambda w: 0.5 if any(k == "revert" for k, _ in w.log) else 1.0)
    report = asyncio.run(run.execute())
    assert report.verdict == "failed" and "did not hold again" in (report.reason or "")
    after = [c for c in report.checks if c.phase == "after" and c.slo == "availability"]
    assert after and not after[0].passed

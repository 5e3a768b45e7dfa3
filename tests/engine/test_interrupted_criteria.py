"""Issue 12.7: an interrupted run does not judge its success criteria: every output says
"not judged: interrupted", none says FAIL or pass."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from chaosrunner.app.run import print_outcome
from chaosrunner.engine.context import RunOptions
from chaosrunner.report.writer import write_reports
from chaosrunner.testing.fakes import FakeClock, World, fake_run


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_criteria_of_an_interrupted_run_are_not_judged(
        signal_name: str, world: World, write_experiment: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    run = fake_run(write_experiment(duration="60s"), world,
                   RunOptions(state_dir=tmp_path / "state", seed=1), clock=clock)
    clock.on_tick.append(lambda t: run.interrupt(signal_name) if world.down else None)
    report = asyncio.run(run.execute())
    assert report.verdict == "interrupted" and report.criteria
    assert all(not c.judged and not c.passed for c in report.criteria)
    assert all(c.detail == "not judged: interrupted" for c in report.criteria)
    report.report_dir = str(tmp_path / "r")
    write_reports(report, tmp_path / "r")
    markdown = (tmp_path / "r" / "report.md").read_text()
    section = markdown.split("## Success criteria")[1].split("##")[0]
    assert "not judged: interrupted" in section and "FAIL" not in section
    html = (tmp_path / "r" / "report.html").read_text()
    assert "not judged" in html.split("Success criteria")[1].split("<h2>")[0]
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    cases = [c for c in suite.iter("testcase") if ".criteria" in c.get("classname", "")]
    assert cases and all(c.find("skipped") is not None and c.find("failure") is None
                         for c in cases)
    capsys.readouterr()
    print_outcome(report, [], None)
    out = capsys.readouterr().out
    assert "[not judged: interrupted]" in out and "[FAIL]" not in out and "[pass]" not in out

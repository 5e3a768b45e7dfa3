"""Issue 12: one truth in every output. A passing, a failing, an aborted and an
interrupted run, each through the code that runs files (`app.run`): the exit status,
report.json, junit.xml, report.md, report.html (parsed), postmortem.md and the `runs`
history say the same verdict, the same criteria results and the same budget figures."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaosrunner.app.run import run_file, save_reports
from chaosrunner.engine.context import RunOptions
from chaosrunner.errors import Verdict
from chaosrunner.history import query_runs
from chaosrunner.report.model import RunReport
from chaosrunner.testing.experiments import write_fake_experiment
from chaosrunner.testing.fakes import FakeClock, World, fake_backends, fake_run
from chaosrunner.testing.html import visible_text

CASES = {  # name -> (criterion, burn, expected verdict)
    "passing": ("70%", 1000, Verdict.PASSED),
    "failing": ("90%", 1000, Verdict.FAILED),
    "aborted": ("70%", 5, Verdict.ABORTED),
}


def html_text(path: Path) -> str:
    return visible_text(path.read_text())


def write(tmp_path: Path, name: str, criterion: str, burn: int, duration: str = "2s") -> Path:
    return write_fake_experiment(tmp_path, name=name, criterion=criterion, burn=burn,
                                 duration=duration, before="500ms", after="1s",
                                 select="{names: [api-1]}", latency=False,
                                 blast_radius="{max_targets: 1, max_percent: 25%}")


def run_case(name: str, tmp_path: Path, world: World) -> tuple[int, RunReport]:
    criterion, burn, _ = CASES[name]
    options = RunOptions(state_dir=tmp_path / "state", report_dir=tmp_path / name, seed=1)
    report = run_file(write(tmp_path, name, criterion, burn), options, output="json",
                      backends=fake_backends(world))
    return report.exit_code, report


def interrupted_case(tmp_path: Path, world: World) -> tuple[int, RunReport]:
    clock = FakeClock()
    options = RunOptions(state_dir=tmp_path / "state", report_dir=tmp_path / "interrupted",
                         seed=1)
    run = fake_run(write(tmp_path, "interrupted", "70%", 1000, duration="60s"), world,
                   options, clock=clock)
    clock.on_tick.append(lambda t: run.interrupt("SIGTERM") if world.down else None)
    report = asyncio.run(run.execute())
    report.report_dir = str(tmp_path / "interrupted")
    save_reports(report, tmp_path / "interrupted", options)
    return report.exit_code, report


@pytest.mark.parametrize("name", [*CASES, "interrupted"])
def test_every_output_tells_the_same_story(name: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    world = World(["api-1", "api-2", "api-3", "api-4"])
    if name == "interrupted":
        code, report = interrupted_case(tmp_path, world)
        expected = Verdict.INTERRUPTED
    else:
        code, report = run_case(name, tmp_path, world)
        expected = CASES[name][2]
    capsys.readouterr()
    directory = tmp_path / name
    assert world.down == set()  # whatever the verdict, the fault was taken back

    # The verdict and the exit status.
    data = json.loads((directory / "report.json").read_text())
    assert report.verdict is expected, report.reason
    assert data["verdict"] == expected.value
    assert code == data["exit_code"] == expected.exit_code_for("SIGTERM")
    suite = ET.parse(directory / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (properties["verdict"], properties["exit_code"]) == (expected.value, str(code))
    run_case_xml = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("verdict"))
    assert (run_case_xml.find("failure") is None) == (expected is Verdict.PASSED)
    markdown = (directory / "report.md").read_text()
    assert markdown.startswith(f"# {expected.value.upper().replace('_', ' ')}:")
    assert f"**{expected.value}** (exit {code})" in markdown
    page = html_text(directory / "report.html")
    assert f"{expected.value} (exit {code})" in page
    [row] = [r for r in query_runs(tmp_path / "state") if r.run_id == data["run_id"]]
    assert (row.verdict, row.exit_code) == (expected, code)
    postmortem = directory / "postmortem.md"
    assert postmortem.exists() == expected.postmortem_due
    if postmortem.exists():
        assert f"**Verdict**: {expected.value} (exit {code})" in postmortem.read_text()

    # The success criteria.
    results = [(c["text"], c["passed"], c.get("judged", True)) for c in data["criteria"]]
    assert results, "every case injected a fault"
    cases = {c.get("name"): c for c in suite.iter("testcase")
             if c.get("classname", "").endswith(".criteria")}
    section = markdown.split("## Success criteria")[1].split("\n## ")[0]
    for text, passed, judged in results:
        case = cases[text]
        assert (case.find("skipped") is not None) == (not judged)
        assert (case.find("failure") is not None) == (judged and not passed)
        [line] = [ln for ln in section.splitlines() if re.search(re.escape(text), ln)]
        mark = "not judged" if not judged else ("PASS" if passed else "FAIL")
        assert line.split("|")[1].strip().strip("*") == mark
    if expected is Verdict.INTERRUPTED:
        assert all(not judged for _, _, judged in results)

    # The budget figures.
    consumed = data["budget"]["availability"]["consumed"]
    assert row.budget_consumed == pytest.approx(consumed)
    if expected is Verdict.ABORTED:
        assert data["abort"]["budget_consumed"] is not None

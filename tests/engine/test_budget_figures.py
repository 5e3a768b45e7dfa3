"""One run's error-budget figures agree (issue 12 item 6, issue 17 item 4).

The abort box, the budget table of report.json / report.md / report.html and the
post-mortem give the same "consumed by this run's traffic" figure, computed once by the
guard; the remaining budget of the SLO window says how much of the window it covers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chaosrunner.engine.context import RunOptions
from chaosrunner.report.model import RunReport
from chaosrunner.report.writer import write_reports
from chaosrunner.testing.fakes import World, fake_run


def aborted_run(world: World, path: Path, tmp_path: Path) -> RunReport:
    options = RunOptions(state_dir=tmp_path / "state", seed=1)
    return asyncio.run(fake_run(path, world, options).execute())


def test_the_abort_and_the_budget_table_give_one_consumed_figure(
        world: World, write_experiment, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Two of four instances down: 50 % availability against 99 % burns 50x; the guard
    # aborts above 5x once both windows (1s, 2s) are over the limit.
    world.budget_remaining, world.budget_held = 0.9, 180.0  # 3 min of the 1 h window
    report = aborted_run(world, write_experiment(burn=5, select="{random: 2}",
                                                 duration="60s"), tmp_path)
    assert report.verdict == "aborted", report.reason
    record = report.budget["availability"]
    assert report.abort is not None and report.abort.budget_consumed is not None
    assert record.consumed == pytest.approx(report.abort.budget_consumed, abs=1e-9)
    assert record.consumed > 0 and record.burn_rate == pytest.approx(50.0, rel=0.01)
    assert record.partial and record.coverage_text() == "over 3 min of the 1 h window"
    assert record.remaining_after == pytest.approx(0.9 - record.consumed)
    write_reports(report, tmp_path / "report")
    files = {name: (tmp_path / "report" / name).read_text()
             for name in ("report.md", "report.html", "postmortem.md")}
    consumed = f"{record.consumed * 100:.3f}".rstrip("0").rstrip(".") + "%"
    for name, content in files.items():
        assert consumed in content, name
        assert "by this run's traffic" in content, name
        assert "partial: over 3 min of the 1 h window" in content, name
    assert "Remaining in the SLO window before" in files["report.md"]
    assert "Remaining in the SLO window before" in files["report.html"]

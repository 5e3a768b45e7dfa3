"""Signals and halts outside the fault phase give the verdicts of DESIGN.md 4."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.runner import Run
from chaosrunner.testing.fakes import FakeClock, World, fake_run


def make_run(world: World, path: Path, tmp_path: Path, clock: FakeClock,
             **options: object) -> Run:
    settings = RunOptions(state_dir=tmp_path / "state", seed=1, **options)  # type: ignore[arg-type]
    return fake_run(path, world, settings, clock=clock)


def test_sigterm_during_before_injects_nothing_and_exits_143(
        world: World, write_experiment, tmp_path: Path) -> None:
    clock = FakeClock()
    the_run = make_run(world, write_experiment(), tmp_path, clock)
    clock.on_tick.append(lambda t: the_run.interrupt("SIGTERM") if t >= 0.5 else None)
    report = asyncio.run(the_run.execute())
    assert (report.verdict, report.exit_code) == ("interrupted", 143)
    assert world.log == []


def test_sigint_during_plan_of_a_dry_run_is_interrupted(
        world: World, write_experiment, tmp_path: Path) -> None:
    clock = FakeClock()
    the_run = make_run(world, write_experiment(), tmp_path, clock, dry_run=True)
    the_run.interrupt("SIGINT")
    report = asyncio.run(the_run.execute())
    assert (report.verdict, report.exit_code) == ("interrupted", 130)
    assert world.log == []
    assert not (tmp_path / "state" / "ledger.jsonl").exists()  # a dry run writes no ledger

"""Game days on the engine's fakes, in-process, with a virtual clock: no real sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaosrunner.engine.context import RunOptions
from chaosrunner.history import record_run
from chaosrunner.report.model import RunReport
from chaosrunner.report.writer import write_reports
from chaosrunner.testing.experiments import write_fake_experiment
from chaosrunner.testing.fakes import FakeClock, World, fake_run

# One of four instances down: availability 75%. `criterion` decides pass (70%) or fail
# (90%); a low `burn` aborts on the first fault sample.
PASS = {"criterion": "70%", "burn": 1000}
FAIL = {"criterion": "90%", "burn": 1000}
ABORT = {"criterion": "70%", "burn": 5}


@pytest.fixture
def world() -> World:
    return World(["api-1", "api-2", "api-3", "api-4"])


@pytest.fixture
def write_gameday(tmp_path: Path) -> Callable[..., Path]:
    """write_gameday([("a", PASS), ("b", FAIL)], stop_on="failure") -> path of gd.yaml."""

    def write(experiments: list[tuple[str, dict[str, object]]], stop_on: str = "failure",
              extra: str = "", name: str = "day") -> Path:
        files = []
        for exp_name, knobs in experiments:
            write_fake_experiment(tmp_path / "experiments", name=exp_name, duration="3s",
                                  after="2s", blast_radius="{max_targets: 1}", latency=False,
                                  **knobs)  # type: ignore[arg-type]
            files.append(f"experiments/{exp_name}.yaml")
        gameday = tmp_path / f"{name}.yaml"
        gameday.write_text(textwrap.dedent(f"""\
            apiVersion: chaosrunner/v1
            kind: GameDay
            name: {name}
            experiments: [{", ".join(files)}]
            stop_on: {stop_on}
            """) + extra)
        return gameday

    return write


class FastRunner:
    """`run_file` on a virtual clock: what the game day calls for each experiment.

    `after_each` runs after an experiment, e.g. to spend the error budget as a real
    Prometheus would then report it.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[RunOptions] = []
        self.after_each: Callable[[RunReport], None] | None = None

    def __call__(self, path: Path, options: RunOptions, output: str | None) -> RunReport:
        self.calls.append(options)
        run = fake_run(path, self.world, dataclasses.replace(options, seed=1),
                       clock=FakeClock(start=datetime.now(UTC)))
        report = asyncio.run(run.execute())
        assert options.report_dir is not None
        report.report_dir = str(options.report_dir)
        write_reports(report, options.report_dir)
        record_run(options.state_dir, report)
        if self.after_each is not None:
            self.after_each(report)
        return report


@pytest.fixture
def fast_runner(world: World) -> FastRunner:
    return FastRunner(world)

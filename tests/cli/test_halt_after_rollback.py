"""Real clock (the halt watcher polls a file): a halt that comes after the rollback has
nothing left to stop and must not turn the run into an aborted one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaosrunner.drivers.base import register_instance, unregister_instance
from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.runner import Run
from chaosrunner.report.model import RunReport
from chaosrunner.slo.sources.base import register_factory, unregister_factory
from chaosrunner.spec.validate import load_experiment
from chaosrunner.testing.fakes import FakeDriver, FakeSource, World

STEADY = """
apiVersion: chaosrunner/v1
kind: SteadyState
name: fake
service_level_objectives:
  availability:
    sli: {http: {url: "http://127.0.0.1:1/"}}
    target: 99%
"""

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: halt-late
hypothesis: a late halt changes nothing
steady_state: {from: steady.yaml, before: 250ms, after: 2s, interval: 250ms}
duration: 500ms
faults:
  - {name: down, action: fake.down, target: {prefix: api}, select: {names: [api-1]}}
"""


def test_halt_during_the_after_phase_is_not_an_abort(tmp_path: Path) -> None:
    world = World(["api-1", "api-2"])
    value = [1.0]
    register_instance(FakeDriver(world))
    register_factory("http", FakeSource.factory(world, value=lambda w: value[0]))
    try:
        (tmp_path / "steady.yaml").write_text(STEADY)
        (tmp_path / "exp.yaml").write_text(EXPERIMENT)
        the_run = Run(load_experiment(tmp_path / "exp.yaml"),
                      RunOptions(state_dir=tmp_path / "state"))

        async def scenario() -> RunReport:
            task = asyncio.ensure_future(the_run.execute())
            while not (the_run.phases and the_run.phases[-1].name == "after"):
                await asyncio.sleep(0.02)
            value[0] = 0.98  # never recovers: the after-phase runs its whole 2 s
            the_run.ledger.halt("too late")
            return await task

        report = asyncio.run(scenario())
    finally:
        unregister_instance("fake")
        unregister_factory("http")
    assert report.abort is None, report.abort
    assert report.verdict == "failed" and "did not hold again" in (report.reason or "")
    assert world.down == set()

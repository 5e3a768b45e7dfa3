"""Engine behaviour that needs a real clock: the halt watcher polls a file, and a driver
call runs in a thread while the sampler goes on. Fakes for everything else."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chaosrunner.app.load import load_runnable
from chaosrunner.engine.clock import RealClock
from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.events import EventLog
from chaosrunner.engine.runner import Run
from chaosrunner.report.model import RunReport
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_backends, fake_run

STEADY = fake_steady_state(latency=False, window=None)

HALT_LATE = """
apiVersion: chaosrunner/v1
kind: Experiment
name: halt-late
hypothesis: a late halt changes nothing
steady_state: {from: steady.yaml, before: 250ms, after: 2s, interval: 250ms}
duration: 500ms
blast_radius: {max_targets: 1, max_percent: 50%}
faults:
  - {name: down, action: fake.down, target: {prefix: api}, select: {names: [api-1]}}
"""


def test_halt_during_the_after_phase_is_not_an_abort(tmp_path: Path) -> None:
    world = World(["api-1", "api-2"])
    value = [1.0]
    (tmp_path / "steady.yaml").write_text(STEADY)
    (tmp_path / "exp.yaml").write_text(HALT_LATE)
    the_run = fake_run(tmp_path / "exp.yaml", world, RunOptions(state_dir=tmp_path / "state"),
                       clock=RealClock(), value=lambda w: value[0])

    async def scenario() -> RunReport:
        task = asyncio.ensure_future(the_run.execute())
        while not (the_run.phases and the_run.phases[-1].name == "after"):
            assert not task.done(), task.result().reason  # it must reach the after-phase
            await asyncio.sleep(0.02)
        value[0] = 0.98  # never recovers: the after-phase runs its whole 2 s
        the_run.ledger.halt("too late")
        return await task

    report = asyncio.run(scenario())
    assert report.abort is None, report.abort
    assert report.verdict == "failed" and "did not hold again" in (report.reason or "")
    assert world.down == set()


SLOW_INJECT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: slow-inject
hypothesis: the guard is not blind while a driver call is slow
steady_state: {from: steady.yaml, before: 250ms, after: 250ms, interval: 250ms}
duration: 30s
blast_radius: {max_targets: 1, max_percent: 50%}
faults:
  - {name: down, action: fake.down, target: {prefix: api}, select: {names: [api-1]}}
abort:
  error_budget: {slo: availability, burn_rate: 10, windows: [1s, 2s]}
"""


def test_guard_aborts_while_an_injection_is_still_running(tmp_path: Path) -> None:
    world = World(["api-1", "api-2"], inject_delay=3.0)
    events = EventLog()

    def outage_starts_with_the_inject(event: dict[str, Any]) -> None:
        if event["event"] == "inject":
            world.external_availability = 0.0

    events.subscribe(outage_starts_with_the_inject)
    (tmp_path / "steady.yaml").write_text(STEADY)
    (tmp_path / "exp.yaml").write_text(SLOW_INJECT)
    backends = fake_backends(world)
    run = Run(load_runnable(tmp_path / "exp.yaml", drivers=backends.drivers),
              RunOptions(state_dir=tmp_path / "s"), events=events, backends=backends)
    report = asyncio.run(run.execute())
    inject_t = next(e["t"] for e in report.events if e["event"] == "inject")
    assert report.verdict == "aborted" and report.abort is not None
    assert "burn rate" in report.abort.reason
    assert report.abort.t is not None and report.abort.t - inject_t < 2.0  # inject takes 3 s
    assert world.down == set() and [k for k, _ in world.log] == ["inject", "revert"]
    assert report.faults[0].injected_at and report.faults[0].reverted_at

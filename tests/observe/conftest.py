"""An experiment on the fakes (chaosrunner.testing.fakes) that runs in about two seconds,
run through the real command line (`main`), with observe settings added per test."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from observe_run import Outcome, Runner

from chaosrunner.cli.main import main
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_backends

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: observed
hypothesis: losing api-1 is seen where people look
steady_state: {from: steady.yaml, before: 250ms, after: 1s, interval: 250ms}
duration: {duration}
blast_radius: {max_targets: 1, max_percent: 50%}
faults:
  - {name: lose-api-1, action: fake.down, target: {prefix: api}, select: {names: [api-1]}}
"""


@pytest.fixture
def world() -> World:
    world = World(["api-1", "api-2"])
    # While api-1 is down the SLI reads `world.down_value` (a test may make it worse).
    world.down_value = 0.995  # type: ignore[attr-defined]
    return world


@pytest.fixture
def run_experiment(tmp_path: Path, world: World,
                   capsys: pytest.CaptureFixture[str]) -> Runner:
    """`run_experiment(extra_yaml, *flags)`: write the experiment plus `extra_yaml`, run it.
    No watchdog: the fake driver lives in this process, a watchdog could not revert it."""
    (tmp_path / "steady.yaml").write_text(fake_steady_state(latency=False, window=None))
    counter = [0]

    def run(extra: str = "", *flags: str, duration: str = "750ms") -> Outcome:
        counter[0] += 1
        path = tmp_path / f"exp{counter[0]}.yaml"
        path.write_text(EXPERIMENT.replace("{duration}", duration) + textwrap.dedent(extra))
        report_dir = tmp_path / f"report{counter[0]}"
        capsys.readouterr()
        backends = fake_backends(world, value=lambda w: w.down_value if w.down else 1.0)  # type: ignore[attr-defined]
        code = main(["run", str(path), "--report-dir", str(report_dir), "--state-dir",
                     str(tmp_path / "state"), "--output", "json", "--no-watchdog", *flags],
                    backends=backends)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err, report_dir)

    return run

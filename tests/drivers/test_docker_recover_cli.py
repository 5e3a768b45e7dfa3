"""End to end with a real engine: `chaosrunner run` is SIGKILLed while one container is
killed and another paused; `chaosrunner recover` in a new process brings both back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docker_fixtures import Containers, answers, state_of, wait_until
from helpers import chaosrunner, http_server

from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import probe_steady_state

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: docker-sigkill
hypothesis: recover takes back what a killed runner left
steady_state: {{from: steady.yaml, before: 1s, after: 1s, interval: 250ms}}
duration: 120s
faults:
  - {{name: kill, action: docker.kill, target: {{container: {killed}}}}}
  - {{name: pause, action: docker.pause, target: {{container: {paused}}}}}
"""


def test_recover_restores_containers_after_the_runner_is_sigkilled(
        containers: Containers, tmp_path: Path) -> None:
    killed, killed_url = containers.web("cli-killed")
    paused, paused_url = containers.web("cli-paused")
    state = tmp_path / "state"
    with http_server(tmp_path) as (url, _, _):
        (tmp_path / "steady.yaml").write_text(
            probe_steady_state(url, name="elsewhere", rate="10/s"))
        (tmp_path / "exp.yaml").write_text(EXPERIMENT.format(killed=killed.name,
                                                             paused=paused.name))
        runner = chaosrunner("run", str(tmp_path / "exp.yaml"), "--state-dir", str(state),
                             "--report-dir", str(tmp_path / "report"), "--no-watchdog")
        try:
            wait_until(lambda: sum(f.confirmed for f in Ledger(state).open_faults()) == 2
                       or runner.poll() is not None, timeout=60, what="both faults injected")
            assert runner.poll() is None, runner.communicate()
        finally:
            runner.kill()
            runner.communicate()
    assert state_of(killed)["Running"] is False and state_of(paused)["Paused"] is True

    recover = chaosrunner("recover", "--state-dir", str(state))
    out, err = recover.communicate(timeout=120)
    assert recover.returncode == 0, out + err
    assert out.count("reverted") == 2
    live: Any = (killed, paused)
    assert all(state_of(c)["Running"] is True and state_of(c)["Paused"] is False for c in live)
    wait_until(lambda: answers(killed_url) and answers(paused_url), timeout=20,
               what="both containers answering after recover")
    assert Ledger(state).open_faults() == []

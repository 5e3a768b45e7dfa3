"""A `docker.stop` in flight when the runner is SIGKILLed (issue 10 item 3).

The container's PID 1 ignores SIGTERM, so the engine's stop waits out the whole grace
period and then kills it: at the runner's death the ledger has an intent and no injected
record, and the container is still running. `recover` (and the watchdog) must wait the
operation out, then start the container again, before calling the fault done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker_fixtures import Containers, state_of
from helpers import REPO, wait_until
from watchdog_support import end_watchdog, kill_runner, pid_alive, start

from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import write_one_fault_experiment

STUBBORN = ["sh", "-c", "trap 'echo got-TERM' TERM; echo started; "
            "while true; do sleep 0.2; done"]
GRACE = 3


def stubborn(containers: Containers) -> Any:
    box = containers.run("stubborn", STUBBORN)
    assert wait_until(lambda: b"started" in box.logs(), timeout=30)
    return box


def kill_mid_stop(tmp_path: Path, box: Any, *extra: str) -> tuple[Path, int | None]:
    """Run docker.stop on the box; SIGKILL the runner once the stop has begun."""
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "slow-stop", "docker.stop",
                                      f"{{container: {box.name}}}",
                                      params=f"{{grace_period: {GRACE}s}}")
    runner = start(path, state, *extra)
    began = wait_until(lambda: b"got-TERM" in box.logs() or runner.poll() is not None,
                       timeout=60)
    assert began and runner.poll() is None, runner.communicate()
    [item] = Ledger(state).open_faults()
    assert not item.confirmed and state_of(box)["Running"] is True  # the stop is in flight
    killed = kill_runner(state, runner)
    return state, killed.watchdog_pid


NEVER = "0001-01-01T00:00:00Z"


def assert_stop_landed_and_taken_back(box: Any) -> None:
    """The engine's stop completes (the container died once: FinishedAt is set), and the
    container runs after it: the revert came after the stop, not before."""
    assert wait_until(lambda: state_of(box)["FinishedAt"] != NEVER, timeout=GRACE + 30)
    state = state_of(box)
    assert state["Running"] is True, state
    assert state["StartedAt"] > state["FinishedAt"]


def test_recover_waits_out_a_stop_in_flight(containers: Containers, tmp_path: Path) -> None:
    box = stubborn(containers)
    state, _ = kill_mid_stop(tmp_path, box, "--no-watchdog")
    done = subprocess.run([sys.executable, "-m", "chaosrunner", "recover", "--state-dir",
                           str(state)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reverted" in done.stdout
    assert_stop_landed_and_taken_back(box)
    assert Ledger(state).open_faults() == []


@pytest.mark.parametrize("attempt", range(2))
def test_the_watchdog_waits_out_a_stop_in_flight(containers: Containers, tmp_path: Path,
                                                 attempt: int) -> None:
    box = stubborn(containers)
    state, dog = kill_mid_stop(tmp_path, box)
    try:
        assert dog is not None
        assert wait_until(lambda: not pid_alive(dog), timeout=60)
    finally:
        end_watchdog(dog)
    assert_stop_landed_and_taken_back(box)
    records = list(Ledger(state).records())
    assert [r.get("how") for r in records if r["type"] == "done"] == ["watchdog"]

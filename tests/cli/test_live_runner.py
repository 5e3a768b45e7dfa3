"""`recover` knows a live runner by the flock it holds on its marker, not by a pid that
another process may own by now (a new PID 1 in the next container, a reused pid)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_until

from chaosrunner.drivers.base import Handle, Instance
from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.fakes import World, fake_drivers


@pytest.fixture
def world() -> World:
    return World(["api-1", "api-2"])


def handle(key: str, name: str) -> Handle:
    return Handle.provisional("fake.down", Instance("fake", name, name), {}, key)


def recover(state: Path, world: World,
            capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    from chaosrunner.cli.recover import command_recover

    args = argparse.Namespace(state_dir=str(state), force=False, output="json",
                              kubernetes=False, namespace=None)
    command_recover(args, fake_drivers(world))
    return json.loads(capsys.readouterr().out)["recovered"]  # type: ignore[no-any-return]


def test_a_dead_runner_whose_pid_is_alive_again_is_recovered(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    ledger = Ledger(state)
    ledger.record_intent("dead", "down", handle("dead.down.0", "api-1"))
    # The marker a SIGKILLed runner left, naming a pid that is alive (PID 1 of the next
    # container, or a reused pid): only the marker's lock says whether its runner lives.
    (state / "active" / "dead.json").write_text(json.dumps({"pid": os.getppid()}))
    results = recover(state, world, capsys)
    assert [r["status"] for r in results] == ["reverted"]
    assert ("revert", "dead.down.0") in world.log
    assert not (state / "active" / "dead.json").exists()  # the dead runner's marker goes


REGISTERED = """
import sys, time
from chaosrunner.engine.ledger import Ledger
Ledger(sys.argv[1]).register_runner("alive", "x")
print("registered", flush=True)
time.sleep(600)
"""


@pytest.fixture
def live_runner(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", REGISTERED, str(tmp_path / "state")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "registered"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_live_runner_keeps_its_faults_until_it_dies(
        world: World, tmp_path: Path, live_runner: subprocess.Popen[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    ledger = Ledger(state)
    ledger.record_intent("alive", "down", handle("alive.down.0", "api-2"))
    assert ledger.live_runs() == {"alive"}
    assert [r["status"] for r in recover(state, world, capsys)] == ["skipped"]
    assert world.log == []
    live_runner.kill()
    live_runner.wait()
    assert wait_until(lambda: ledger.live_runs() == set())  # the kernel dropped the lock
    assert [r["status"] for r in recover(state, world, capsys)] == ["reverted"]


def test_a_runner_sees_itself_alive_and_unregisters(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state")
    marker = ledger.register_runner("mine", "x")
    assert Ledger(tmp_path / "state").live_runs() == {"mine"}
    assert marker.stat().st_mode & 0o777 == 0o600
    ledger.unregister_runner("mine")
    assert not marker.exists() and Ledger(tmp_path / "state").live_runs() == set()

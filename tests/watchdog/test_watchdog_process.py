"""The watchdog against real processes: SIGKILL the runner mid-fault, type nothing after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import proc_state, sleeping_process, wait_until
from watchdog_support import (
    REVERT_BOUND,
    end_watchdog,
    kill_and_time,
    kill_runner,
    pid_alive,
    seconds_until,
    start,
    wait_confirmed,
    watchdog_pid,
)

from chaosrunner.engine.ledger import Ledger
from chaosrunner.history import query_runs
from chaosrunner.testing.experiments import write_one_fault_experiment


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with sleeping_process(tmp_path / "sleeper.pid") as proc:
        yield proc


def running(pid: int) -> bool:
    return proc_state(pid) in ("S", "R")


def paused_run(tmp_path: Path, name: str, *flags: str, duration: str = "120s"
               ) -> tuple[Path, subprocess.Popen[str]]:
    """`chaosrunner run` pausing the sleeper, until the pause is injected: (state, runner)."""
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, name, "process.pause",
                                      f"{{pid_file: {tmp_path / 'sleeper.pid'}}}",
                                      duration=duration)
    runner = start(path, state, *flags)
    wait_confirmed(state, runner)
    return state, runner


RUNS = int(os.environ.get("CHAOSRUNNER_WATCHDOG_RUNS", "3"))


@pytest.mark.parametrize("attempt", range(RUNS))
def test_a_sigkilled_runner_s_pause_is_taken_back_within_5s(
        tmp_path: Path, sleeper: subprocess.Popen[bytes], attempt: int) -> None:
    state, runner = paused_run(tmp_path, "pause-sleeper")
    assert proc_state(sleeper.pid) == "T"
    # Reverted within 5 s; it records what it did, then exits on its own.
    kill_and_time(state, runner, lambda: running(sleeper.pid))
    records = list(Ledger(state).records())
    assert any(r["type"] == "done" and r.get("how") == "watchdog" for r in records)
    assert any(r["type"] == "watchdog" for r in records)
    [row] = query_runs(state)
    assert row.verdict == "interrupted" and "watchdog took back 1 fault" in (row.reason or "")
    assert not list((state / "active").glob("*.json"))  # the dead runner's marker is gone


def test_the_watchdog_exits_quietly_when_the_run_ends(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    state, runner = paused_run(tmp_path, "short", duration="1s")
    dog = watchdog_pid(state)
    assert dog is not None
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    try:
        assert wait_until(lambda: not pid_alive(dog), timeout=30)
    finally:
        end_watchdog(dog)
    records = list(Ledger(state).records())
    assert not any(r["type"] == "watchdog" for r in records)
    assert [r.get("how") for r in records if r["type"] == "done"] == ["reverted"]


def test_no_watchdog_leaves_the_fault_to_recover(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    state, runner = paused_run(tmp_path, "unwatched", "--no-watchdog")
    assert watchdog_pid(state) is None
    kill_runner(state, runner)
    assert proc_state(sleeper.pid) == "T"  # nobody took it back
    recover = subprocess.run([sys.executable, "-m", "chaosrunner", "recover", "--state-dir",
                              str(state), "--output", "json"],
                             capture_output=True, text=True, timeout=60)
    assert recover.returncode == 0, recover.stderr
    assert json.loads(recover.stdout)["recovered"][0]["status"] == "reverted"
    assert wait_until(lambda: running(sleeper.pid))


def test_the_watchdog_is_in_its_own_session_and_deaf_to_sigint_and_sighup(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    state, runner = paused_run(tmp_path, "deaf")
    dog = watchdog_pid(state)
    try:
        assert dog is not None
        assert os.getsid(dog) == dog != os.getsid(runner.pid)
        assert os.getpgid(dog) != os.getpgid(runner.pid)
        for number in (signal.SIGINT, signal.SIGHUP):
            os.kill(dog, number)
        assert pid_alive(dog) and proc_state(sleeper.pid) == "T"
        fds = {os.readlink(f"/proc/{dog}/fd/{n}") for n in (0, 1)}
        assert fds == {"/dev/null"}
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=60)
        assert wait_until(lambda: not pid_alive(dog), timeout=30)
        end_watchdog(dog)
    assert running(sleeper.pid)


def test_a_frozen_runner_loses_its_faults_when_its_heartbeat_stops(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """SIGSTOP: the runner is alive but deaf; no heartbeat for 10 s counts as lost."""
    state, runner = paused_run(tmp_path, "frozen")
    dog = watchdog_pid(state)
    try:
        runner.send_signal(signal.SIGSTOP)
        assert wait_until(lambda: running(sleeper.pid), timeout=60)
        assert wait_until(lambda: not pid_alive(dog), timeout=30)
        records = list(Ledger(state).records())
        [note] = [r for r in records if r["type"] == "watchdog"]
        assert "no heartbeat" in note["summary"]
        # The runner lives on: its marker stays, and once it runs again it aborts, since
        # the watchdog that guarded it is gone.
        assert list((state / "active").glob("*.json"))
        runner.send_signal(signal.SIGCONT)
        out, err = runner.communicate(timeout=60)
        assert runner.returncode == 2, err
        assert "watchdog is gone" in out + err
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGCONT)
            runner.kill()
            runner.communicate()
        end_watchdog(dog)
    assert running(sleeper.pid)


def test_a_sigkilled_game_day_s_fault_is_taken_back(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    path = write_one_fault_experiment(tmp_path, "in-a-day", "process.pause",
                                      f"{{pid_file: {tmp_path / 'sleeper.pid'}}}")
    (tmp_path / "day.yaml").write_text(
        "apiVersion: chaosrunner/v1\nkind: GameDay\nname: day\n"
        f"experiments: [{path.name}]\nstop_on: never\n")
    state = tmp_path / "state"
    day = subprocess.Popen([sys.executable, "-m", "chaosrunner", "gameday",
                            str(tmp_path / "day.yaml"), "--allow-exec", "--state-dir",
                            str(state), "--report-dir", str(tmp_path / "day")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_confirmed(state, day)  # type: ignore[arg-type]
    killed = kill_runner(state, day)  # type: ignore[arg-type]
    try:
        took = seconds_until(lambda: running(sleeper.pid), killed.killed_at)
        assert took is not None and took < REVERT_BOUND, took
    finally:
        end_watchdog(killed.watchdog_pid)


def test_the_watchdog_enforces_ledger_deadlines_while_the_runner_lives(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """A hung runner's fault past its deadline is taken back; one not due stays."""
    import time

    from chaosrunner.cli.watchdog import enforce_deadlines
    from chaosrunner.drivers.base import DriverContext
    from chaosrunner.drivers.process import ProcessDriver

    driver = ProcessDriver(DriverContext(base_dir=str(tmp_path)))
    [instance] = driver.resolve("process.pause", {"pid_file": "sleeper.pid"})
    ledger = Ledger(tmp_path / "state")
    due = driver.inject(instance, "process.pause", {}, "hung.due.0")
    ledger.record_intent("hung", "due", due, deadline=time.time() - 1)
    ledger.record_injected("hung", "due", due)
    later = due.__class__.provisional("process.pause", instance, {}, "hung.later.0")
    ledger.record_intent("hung", "later", later, deadline=time.time() + 600)
    ledger.record_intent("other", "due", due.__class__.provisional(
        "process.pause", instance, {}, "other.due.0"), deadline=time.time() - 1)
    assert proc_state(sleeper.pid) == "T"
    enforce_deadlines(ledger, "hung")
    assert wait_until(lambda: running(sleeper.pid))
    assert sorted(f.handle.key for f in ledger.open_faults()) == ["hung.later.0", "other.due.0"]
    assert [r.get("how") for r in ledger.records() if r["type"] == "done"] == ["deadline"]


def test_a_runner_frozen_while_writing_the_ledger_does_not_hang_its_watchdog(
        tmp_path: Path, sleeper: subprocess.Popen[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGSTOP can land while the runner holds the ledger's lock (a line's write and
    fsync): the watchdog, which records each revert before the next, still takes back
    every fault of the run."""
    import argparse
    import fcntl

    from chaosrunner.cli.watchdog import take_back_run
    from chaosrunner.drivers.base import DriverContext
    from chaosrunner.drivers.process import ProcessDriver
    from chaosrunner.engine import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "APPEND_LOCK_WAIT", 0.5)
    driver = ProcessDriver(DriverContext(base_dir=str(tmp_path)))
    ledger = Ledger(tmp_path / "state")
    with sleeping_process(tmp_path / "second.pid") as second:
        for name in ("sleeper", "second"):
            [instance] = driver.resolve("process.pause", {"pid_file": f"{name}.pid"})
            handle = driver.inject(instance, "process.pause", {}, f"frozen.{name}.0")
            ledger.record_intent("frozen", name, handle)
            ledger.record_injected("frozen", name, handle)
        assert proc_state(sleeper.pid) == proc_state(second.pid) == "T"
        fd = os.open(ledger.path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the frozen runner's append
            args = argparse.Namespace(run_id="frozen", state_dir=str(tmp_path / "state"),
                                      experiment="frozen", started_at=None)
            assert take_back_run(ledger, args, "no heartbeat from the runner for 10s",
                                 dead=False) == 0
        finally:
            os.close(fd)
        assert running(sleeper.pid) and running(second.pid)
    assert ledger.open_faults() == []

"""Start a real `chaosrunner run` with its watchdog, SIGKILL it mid-fault, time the revert.

Shared by the watchdog tests and bench/watchdog_bench.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers import chaosrunner, wait_until

from chaosrunner.engine.ledger import Ledger

REVERT_BOUND = 5.0  # the promise: gone within 5 s of the runner's death


@dataclass
class Killed:
    """One SIGKILLed run: the runner, its watchdog and when it died."""

    runner: subprocess.Popen[str]
    watchdog_pid: int | None
    killed_at: float


def start(path: Path, state: Path, *extra: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[str]:
    return chaosrunner("run", str(path), "--state-dir", str(state), "--report-dir",
                       str(state.parent / f"report-{path.stem}"), "--allow-exec", *extra,
                       env={**os.environ, **(env or {})})


def wait_confirmed(state: Path, runner: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the runner's fault is injected (an `injected` record in the ledger)."""
    ledger = Ledger(state)
    ok = wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
                    or runner.poll() is not None, timeout=timeout)
    if not ok or runner.poll() is not None:
        runner.kill()
        out, err = runner.communicate()
        raise AssertionError(f"the fault was never injected:\n{out}\n{err}")


def watchdog_pid(state: Path) -> int | None:
    """The pid of the run's watchdog, found by its command line (state dir argument)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"chaosrunner.cli.watchdog" in argv and str(state).encode() in argv:
                return int(entry.name)
    return None


def kill_runner(state: Path, runner: subprocess.Popen[str]) -> Killed:
    """SIGKILL the runner only (its watchdog lives on)."""
    dog = watchdog_pid(state)
    killed_at = time.monotonic()
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    return Killed(runner, dog, killed_at)


def seconds_until(predicate: Callable[[], bool], since: float, bound: float = 30.0
                  ) -> float | None:
    """Seconds from `since` until predicate holds (polled), None if not within `bound`."""
    if wait_until(predicate, timeout=bound, step=0.02):
        return time.monotonic() - since
    return None


@dataclass
class Timed:
    """What `time_revert` saw after the SIGKILL."""

    watchdog_pid: int | None
    took: float | None  # seconds from the SIGKILL until reverted; None: not within `bound`
    watchdog_exited: bool  # the watchdog exited on its own


def time_revert(state: Path, runner: subprocess.Popen[str], reverted: Callable[[], bool],
                bound: float = 30.0, exit_within: float = 30.0) -> Timed:
    """SIGKILL the runner only, time until `reverted` holds, then give its watchdog
    `exit_within` seconds to exit; a watchdog still there is killed."""
    killed = kill_runner(state, runner)
    try:
        took = seconds_until(reverted, killed.killed_at, bound)
        exited = wait_until(lambda: not pid_alive(killed.watchdog_pid), timeout=exit_within)
    finally:
        end_watchdog(killed.watchdog_pid)
    return Timed(killed.watchdog_pid, took, exited)


def kill_and_time(state: Path, runner: subprocess.Popen[str], reverted: Callable[[], bool],
                  exit_within: float = 30.0) -> None:
    """SIGKILL the runner; the fault must be reverted within REVERT_BOUND, the watchdog
    exit, and the ledger hold no open fault."""
    timed = time_revert(state, runner, reverted, exit_within=exit_within)
    assert timed.watchdog_pid is not None, "no watchdog was running"
    assert timed.took is not None and timed.took < REVERT_BOUND, f"reverted after {timed.took}s"
    assert timed.watchdog_exited, "the watchdog did not exit"
    assert Ledger(state).open_faults() == []


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: the watchdog is not our child, but be safe.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return False


def end_watchdog(pid: int | None) -> None:
    """Test cleanup: a watchdog still running after a test is killed (and was a bug)."""
    if pid_alive(pid):
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

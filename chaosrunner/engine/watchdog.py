"""The runner's side of the watchdog: start it, beat, tell it the rollback is done.

Every `run` (and each experiment of a game day) starts one watchdog process
(`python -m chaosrunner.cli.watchdog`, see there) before its first fault. The runner holds
the write end of a pipe whose read end only the watchdog has:

* a byte `h` every second is the heartbeat;
* a byte `d` followed by closing the pipe says "rollback finished": the watchdog exits
  quietly;
* end-of-file without `d` means the runner died (SIGKILL, OOM, a crash): the kernel closes
  the pipe at once, and the watchdog takes the run's open faults back.

The pipe's write end is not inheritable, so no child of the runner keeps it open.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from chaosrunner.errors import StateError

HEARTBEAT = b"h"
DONE = b"d"
READY = b"r"
HEARTBEAT_INTERVAL = 1.0
START_TIMEOUT = 30.0  # a loaded machine may take a while to start a Python process
WATCHDOG_DIR = "watchdog"


class Watchdog:
    """A started watchdog process and the pipe to it."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe: int | None = pipe

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, state_dir: Path, run_id: str, experiment: str, started_at: str,
              drivers: tuple[str, ...] = (), timeout: float = START_TIMEOUT) -> Watchdog:
        """Start the watchdog and wait until it watches; StateError when it cannot.
        `drivers`: the run's driver names, which the watchdog readies while it waits, so
        that a revert does not first import a client library."""
        log = log_path(state_dir, run_id)
        try:
            log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            log_file = os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                         | os.O_NOFOLLOW, 0o600), "ab")
        except OSError as exc:
            raise StateError(f"cannot start the watchdog: {log}: {exc.strerror}") from None
        beat_r, beat_w = os.pipe()
        ready_r, ready_w = os.pipe()
        argv = [sys.executable, "-m", "chaosrunner.cli.watchdog", "--state-dir",
                str(state_dir), "--run-id", run_id, "--experiment", experiment,
                "--started-at", started_at, "--runner-pid", str(os.getpid()),
                "--pipe-fd", str(beat_r), "--ready-fd", str(ready_w),
                "--drivers", ",".join(drivers)]
        try:
            with log_file:
                process = subprocess.Popen(
                    argv, pass_fds=(beat_r, ready_w), start_new_session=True,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file)
        except OSError as exc:
            for fd in (beat_r, beat_w, ready_r, ready_w):
                os.close(fd)
            raise StateError(f"cannot start the watchdog: {exc}") from None
        os.close(beat_r)
        os.close(ready_w)
        watchdog = cls(process, beat_w)
        try:
            ready = _wait_ready(ready_r, timeout)
        finally:
            os.close(ready_r)
        if not ready:
            watchdog.finish()
            raise StateError(f"the watchdog did not start within {timeout:g}s (see {log}); "
                             "pass --no-watchdog to run without one")
        return watchdog

    def beat(self) -> bool:
        """Renew the heartbeat; False when the watchdog is gone (it took the faults back
        because the heartbeat stopped, or it was killed)."""
        if self._pipe is None:
            return False
        try:
            os.write(self._pipe, HEARTBEAT)
        except OSError:
            return False
        return True

    def finish(self) -> None:
        """The rollback is done: the watchdog exits quietly."""
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._pipe, DONE)
        os.close(self._pipe)
        self._pipe = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)  # reap it; it exits at once


def log_path(state_dir: Path, run_id: str) -> Path:
    return Path(state_dir) / WATCHDOG_DIR / f"{run_id}.log"


def _wait_ready(fd: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return os.read(fd, 1) == READY  # b"" when it died starting
    return False

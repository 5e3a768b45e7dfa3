"""`load.http`: extra HTTP traffic against a target, made by Locust in a child process.

The child (chaosrunner.load.child) runs in its own session and process group; its pid,
process group and status file are in the handle. Every process of a load fault (the
Locust process and its local workers) carries the fault's key on its command line, so a
revert, even of the provisional handle a SIGKILLed runner left in the ledger, finds them
all by scanning /proc: nothing else is ever signalled. The child also stops by itself when
the runner that started it is gone, and at its deadline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from chaosrunner.drivers.base import DEADLINE_PARAM, JSON, BaseDriver, Handle, Instance
from chaosrunner.drivers.process import cmdline, start_time
from chaosrunner.errors import DriverError, DriverUnavailable
from chaosrunner.load.settings import check_target, env_refs, load_settings

CHILD = "chaosrunner.load.child"
WORKDIR_PREFIX = "chaosrunner-load-"
WORKDIR_KEEP = 2 * 86400.0  # a load's status file is read for its report, then kept a while
STOP_GRACE = 5.0
# A load that nothing stops (its runner and every recover gone) ends by itself after this.
DEFAULT_DEADLINE = 24 * 3600.0


class LoadDriver(BaseDriver):
    name: ClassVar[str] = "load"
    actions: ClassVar[frozenset[str]] = frozenset({"http"})
    # Extra traffic is what makes a system break: on rollback it stops first.
    revert_first: ClassVar[bool] = True
    # The Locust process stops by itself at the fault's deadline, runner or not.
    accepts_deadline: ClassVar[bool] = True

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        self.check_action(action)
        return load_settings(target, params)

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        url = check_target(target)
        self.health()
        return [Instance("load", url, url, {"url": url})]

    def health(self) -> None:
        if importlib.util.find_spec("locust") is None:
            raise DriverUnavailable("load.http needs Locust, which is not installed; "
                                    "pip install 'chaosrunner[load]'")

    def composes(self, first: str, second: str) -> bool:
        return True  # two loads on one target add up; stopping one leaves the other

    # --- inject --------------------------------------------------------------------------

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        missing = [name for name in env_refs(params) if name not in os.environ]
        if missing:
            raise DriverError(f"load.http: the headers or body refer to ${{env:{missing[0]}}}, "
                              f"which is not set; export {missing[0]} before running")
        sweep_old_workdirs()
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        status = workdir / "status.jsonl"
        config = {**params, "status": str(status), "parent": os.getpid(),
                  "deadline": float(params.get(DEADLINE_PARAM) or time.time() + DEFAULT_DEADLINE)}
        (workdir / "config.json").write_text(json.dumps(config))
        with (workdir / "child.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", CHILD, "run", str(workdir / "config.json"),
                 f"--key={key}"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        threading.Thread(target=process.wait, daemon=True).start()  # reap it, never a zombie
        handle = Handle(action, instance, key,
                        {k: v for k, v in params.items() if k != DEADLINE_PARAM}).with_data(
            pid=process.pid, pgid=process.pid, start_time=start_time(process.pid),
            dir=str(workdir), status=str(status))
        try:
            self._wait_running(process, status, float(params.get("start_timeout", 60.0)))
        except DriverError:
            self.revert(handle)
            raise
        return handle

    @staticmethod
    def _wait_running(process: subprocess.Popen[bytes], status: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout + 30.0  # + Locust's own start on a busy machine
        while time.monotonic() < deadline:
            last = read_status(status)
            if last and last[-1].get("state") == "running":
                return
            if last and last[-1].get("state") == "failed":
                raise DriverError(f"load.http: {last[-1].get('message')}")
            if process.poll() is not None:
                log = (status.parent / "child.log").read_text(errors="replace")[-1500:]
                raise DriverError(f"load.http: the Locust process exited "
                                  f"({process.returncode}) before the load started: {log}")
            time.sleep(0.05)
        raise DriverError(f"load.http: Locust did not start within {timeout + 30:g}s")

    # --- revert --------------------------------------------------------------------------

    def revert(self, handle: Handle) -> None:
        """Stop every process of this load (SIGTERM, then SIGKILL); idempotent."""
        pids = load_processes(handle.key)
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and (pids := load_processes(handle.key)):
            time.sleep(0.02)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and load_processes(handle.key):
            time.sleep(0.02)
        left = load_processes(handle.key)
        if left:
            raise DriverError(f"load {handle.key}: processes {left} still run after SIGKILL")


def sweep_old_workdirs(now: float | None = None) -> None:
    """Remove the work directories of loads that ended days ago (a running load writes
    its status file every second, so it is never old)."""
    now = time.time() if now is None else now
    for directory in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        try:
            newest = max((f.stat().st_mtime for f in directory.iterdir()),
                         default=directory.stat().st_mtime)
        except OSError:
            continue
        if now - newest > WORKDIR_KEEP:
            shutil.rmtree(directory, ignore_errors=True)


def load_processes(key: str) -> list[int]:
    """Live processes of the load fault `key` (zombies have no command line)."""
    marker = f"--key={key}"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            line = cmdline(int(entry.name))
            if CHILD in line and line.endswith(marker):
                found.append(int(entry.name))
    return found


def read_status(path: Path) -> list[dict[str, JSON]]:
    """The status lines the Locust process wrote so far."""
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a line being written
    return lines


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise DriverError(f"not allowed to signal load process {pid}") from None

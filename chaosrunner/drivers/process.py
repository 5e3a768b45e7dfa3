"""Local processes: `process.kill` and `process.pause`, by pid file or command-line regex.

Instances carry the process start time (from /proc) as well as the pid, so a revert
after a crash never signals an unrelated process that reused the pid.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from chaosrunner.drivers.base import JSON, BaseDriver, Handle, Instance, ParamError
from chaosrunner.errors import DriverError, TargetNotFound
from chaosrunner.spec.units import parse_duration, shorten_middle

PROC = Path("/proc")


def start_time(pid: int) -> int | None:
    """Clock ticks since boot at which `pid` started, or None if it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[19])


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def process_state(pid: int) -> str | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[0]


def own_lineage() -> set[int]:
    """This process and its ancestors: never targets, whatever the regex says. This process
    is in it even as PID 1 (a container's entrypoint, a CronJob's command)."""
    pid = os.getpid()
    lineage = {pid}
    while True:
        try:
            raw = (PROC / str(pid) / "stat").read_text()
            pid = int(raw[raw.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            break
        if pid <= 1 or pid in lineage:  # the init above us stays a possible target
            break
        lineage.add(pid)
    return lineage


def parse_signal(value: JSON, key: tuple[str | int, ...]) -> int:
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(signal.Signals(value))
        name = str(value).upper()
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except (KeyError, ValueError):
        raise ParamError(key, f"unknown signal {value!r}; use a name like SIGTERM or SIGKILL"
                         ) from None


class ProcessDriver(BaseDriver):
    name: ClassVar[str] = "process"
    actions: ClassVar[frozenset[str]] = frozenset({"kill", "pause"})

    # --- validate ------------------------------------------------------------------------

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        verb = self.check_action(action)
        self._validate_target(target)
        allowed = {"kill": {"signal", "restart", "restart_after"}, "pause": set()}[verb]
        for key in params:
            if key not in allowed:
                raise ParamError(("with", key), f"unknown parameter for process.{verb}; "
                                 f"allowed: {', '.join(sorted(allowed)) or 'none'}")
        result: dict[str, JSON] = {}
        if verb == "kill":
            result["signal"] = parse_signal(params.get("signal", "SIGKILL"), ("with", "signal"))
            result.update(self._validate_restart(params))
        return result

    @staticmethod
    def _validate_target(target: Mapping[str, JSON]) -> None:
        keys = set(target)
        if len(keys & {"pid_file", "cmdline_regex"}) != 1 or keys - {"pid_file", "cmdline_regex"}:
            raise ParamError(("target",), "process targets are {pid_file: PATH} or "
                             "{cmdline_regex: RE}")
        if "cmdline_regex" in target:
            try:
                re.compile(str(target["cmdline_regex"]))
            except re.error as exc:
                raise ParamError(("target", "cmdline_regex"), f"bad regex: {exc}") from None

    @staticmethod
    def _validate_restart(params: Mapping[str, JSON]) -> dict[str, JSON]:
        result: dict[str, JSON] = {}
        if "restart" in params:
            command = params["restart"]
            argv = shlex.split(command) if isinstance(command, str) else command
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ParamError(("with", "restart"), "restart is a command line or a list of "
                                 "arguments")
            result["restart"] = argv
        if "restart_after" in params:
            if "restart" not in params:
                raise ParamError(("with", "restart_after"), "restart_after needs restart: CMD")
            try:
                result["restart_after"] = parse_duration(params["restart_after"])
            except ValueError as exc:
                raise ParamError(("with", "restart_after"), str(exc)) from None
        return result

    def needs_exec(self, action: str, params: Mapping[str, JSON]) -> bool:
        return "restart" in params

    # --- resolve -------------------------------------------------------------------------

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        if "pid_file" in target:
            pids = [self._pid_from_file(str(target["pid_file"]))]
        else:
            pattern = re.compile(str(target["cmdline_regex"]))
            lineage = own_lineage()
            pids = [pid for pid in self._all_pids()
                    if pid not in lineage and pattern.search(cmdline(pid))]
        return [instance for pid in pids if (instance := self._instance(pid)) is not None]

    def _pid_from_file(self, raw_path: str) -> int:
        path = Path(raw_path)
        if not path.is_absolute():
            path = Path(self.context.base_dir) / path
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise TargetNotFound(f"pid file {path} does not exist; is the process running?"
                                 ) from None
        except OSError as exc:
            raise TargetNotFound(f"pid file {path} cannot be read: {exc.strerror}") from None
        if not text.isdigit() or int(text) <= 1:
            raise TargetNotFound(f"pid file {path} does not hold a process id "
                                 f"(found {text[:30]!r})")
        pid = int(text)
        if start_time(pid) is None:
            raise TargetNotFound(f"pid file {path} names process {pid}, which is not running")
        return pid

    @staticmethod
    def _all_pids() -> list[int]:
        return sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())

    @staticmethod
    def _instance(pid: int) -> Instance | None:
        started = start_time(pid)
        if started is None:
            return None
        line = cmdline(pid)
        try:
            cwd = os.readlink(PROC / str(pid) / "cwd")
        except OSError:
            cwd = "/"
        return Instance("process", str(pid), f"pid {pid}: {shorten_middle(line, 80)}",
                        {"pid": pid, "start_time": started, "cmdline": line, "cwd": cwd})

    # --- inject / revert -----------------------------------------------------------------

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        pid = self._same_process(instance)
        if pid is None:
            raise TargetNotFound(f"process {instance.name} is gone (exited between plan and "
                                 "inject)")
        handle = Handle(action, instance, key, dict(params))
        if action.endswith("pause"):
            self._signal(pid, signal.SIGSTOP)
            self._wait_stopped(pid, 5.0)
            return handle.with_data(stopped=True)
        sig = int(params.get("signal", signal.SIGKILL))
        self._signal(pid, sig)
        if sig == signal.SIGKILL:
            self._wait_gone(instance, 5.0)
        return handle.with_data(killed=True, signal=sig)

    def revert(self, handle: Handle) -> None:
        if handle.verb == "pause":
            pid = self._same_process(handle.instance)
            if pid is not None:  # gone: nothing paused remains
                self._signal(pid, signal.SIGCONT)
            return
        if "restart" in handle.params and self._same_process(handle.instance) is None:
            self._restart(handle)

    def _restart(self, handle: Handle) -> None:
        argv = [str(a) for a in handle.params["restart"]]
        cwd = str(handle.instance.attrs.get("cwd") or self.context.base_dir)
        if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
            raise DriverError(f"restart of {handle.instance.name}: program {argv[0]!r} not found")
        # `setsid -f` detaches the restarted service from this runner (its own session,
        # parent init), so it outlives the run and never becomes our zombie.
        try:
            subprocess.run(["setsid", "-f", *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                           timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DriverError(f"restart of {handle.instance.name} with {argv} failed: {exc}"
                              ) from None

    @staticmethod
    def _same_process(instance: Instance) -> int | None:
        pid = int(instance.attrs.get("pid", instance.id))
        if start_time(pid) != instance.attrs.get("start_time"):
            return None
        if process_state(pid) == "Z":
            return None
        return pid

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            raise TargetNotFound(f"process {pid} is gone") from None
        except PermissionError:
            raise DriverError(f"not allowed to signal process {pid}; run chaosrunner as its "
                              "owner") from None

    @staticmethod
    def _wait_stopped(pid: int, timeout: float) -> None:
        """SIGSTOP is delivered asynchronously: an injection is confirmed only once the
        kernel shows the process stopped, so "injected" means the effect is in."""
        deadline = time.monotonic() + timeout
        while process_state(pid) not in ("T", "t", None, "Z"):
            if time.monotonic() >= deadline:
                raise DriverError(f"process {pid} did not stop within {timeout:g}s of SIGSTOP")
            time.sleep(0.005)

    def _wait_gone(self, instance: Instance, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._same_process(instance) is not None:
            time.sleep(0.01)

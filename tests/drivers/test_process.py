"""The process driver against real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import proc_state, wait_until

from chaosrunner.drivers.base import DriverContext, Handle, ParamError
from chaosrunner.drivers.process import ProcessDriver, cmdline
from chaosrunner.errors import TargetNotFound
from chaosrunner.testing.contract import ContractCase, DriverContract


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    marker = f"chaosrunner-test-sleeper-{os.getpid()}-{tmp_path.name}"
    proc = subprocess.Popen([sys.executable, "-c", "import time,sys; time.sleep(300)", marker])
    # Popen returns before the kernel publishes the new argv (/proc/PID/cmdline reads empty
    # for a moment after execve closed the close-on-exec pipe Popen waits on).
    assert wait_until(lambda: cmdline(proc.pid).endswith(marker))
    pid_file = tmp_path / "sleeper.pid"
    pid_file.write_text(f"{proc.pid}\n")
    yield proc, pid_file
    proc.kill()
    proc.wait()


def driver(tmp_path: Path, allow_exec: bool = False) -> ProcessDriver:
    return ProcessDriver(DriverContext(base_dir=str(tmp_path), allow_exec=allow_exec))


def test_pause_and_revert_by_pid_file(sleeper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc, _ = sleeper
    d = driver(tmp_path)
    params = d.validate("process.pause", {"pid_file": "sleeper.pid"}, {})
    [instance] = d.resolve("process.pause", {"pid_file": "sleeper.pid"})
    assert instance.attrs["pid"] == proc.pid
    handle = d.inject(instance, "process.pause", params, "k1")
    assert wait_until(lambda: proc_state(proc.pid) == "T")
    # revert works from JSON alone (what `recover` has) and twice in a row
    d.revert(Handle.from_json(handle.to_json()))
    d.revert(handle)
    assert wait_until(lambda: proc_state(proc.pid) in ("S", "R"))


def test_provisional_handle_reverts_a_pause(sleeper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc, pid_file = sleeper
    d = driver(tmp_path)
    [instance] = d.resolve("process.pause", {"pid_file": str(pid_file)})
    d.inject(instance, "process.pause", {}, "k1")
    d.revert(Handle.provisional("process.pause", instance, {}, "k1"))
    assert wait_until(lambda: proc_state(proc.pid) in ("S", "R"))


def test_kill_by_cmdline_regex_never_matches_itself(sleeper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc, _ = sleeper
    d = driver(tmp_path)
    target = {"cmdline_regex": f"chaosrunner-test-sleeper-{os.getpid()}-{tmp_path.name}"}
    params = d.validate("process.kill", target, {"signal": "SIGKILL"})
    instances = d.resolve("process.kill", target)
    assert [i.attrs["pid"] for i in instances] == [proc.pid]
    # A regex that surely matches this process's own command line (whatever runs pytest, and
    # whether or not other test runners exist on the machine), even when it is PID 1.
    itself = {"cmdline_regex": re.escape(cmdline(os.getpid()))}
    assert re.search(str(itself["cmdline_regex"]), cmdline(os.getpid()))
    assert all(i.attrs["pid"] != os.getpid() for i in d.resolve("process.kill", itself))
    d.inject(instances[0], "process.kill", params, "k")
    assert proc.wait(timeout=5) == -9


def test_own_lineage_holds_this_process_even_as_pid_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's entrypoint (the CronJob's chaosrunner) is PID 1: still never a target."""
    from chaosrunner.drivers import process

    monkeypatch.setattr(process.os, "getpid", lambda: 1)
    assert 1 in process.own_lineage()


def test_restart_reverts_a_kill(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    (tmp_path / "p.pid").write_text(str(proc.pid))
    d = driver(tmp_path, allow_exec=True)
    restart = f"{sys.executable} -c \"open('{marker}', 'w').write('x')\""
    params = d.validate("process.kill", {"pid_file": "p.pid"}, {"restart": restart})
    assert d.needs_exec("process.kill", {"restart": restart})
    [instance] = d.resolve("process.kill", {"pid_file": "p.pid"})
    handle = d.inject(instance, "process.kill", params, "k")
    proc.wait(timeout=5)
    d.revert(handle)
    assert wait_until(marker.exists)


@pytest.mark.parametrize(("content", "message"), [
    ("garbage\n", "does not hold a process id"),
    ("", "does not hold a process id"),
    ("999999999", "not running"),
])
def test_bad_pid_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.pid").write_text(content)
    with pytest.raises(TargetNotFound, match=message):
        driver(tmp_path).resolve("process.kill", {"pid_file": "bad.pid"})
    with pytest.raises(TargetNotFound, match="does not exist"):
        driver(tmp_path).resolve("process.kill", {"pid_file": "missing.pid"})


@pytest.mark.parametrize(("action", "target", "params", "key"), [
    ("process.kill", {"pid_file": "a", "cmdline_regex": "b"}, {}, ("target",)),
    ("process.kill", {"cmdline_regex": "("}, {}, ("target", "cmdline_regex")),
    ("process.kill", {"pid_file": "a"}, {"signal": "SIGNOPE"}, ("with", "signal")),
    ("process.pause", {"pid_file": "a"}, {"signal": "SIGTERM"}, ("with", "signal")),
    ("process.kill", {"pid_file": "a"}, {"restart_after": "5s"}, ("with", "restart_after")),
    ("process.melt", {"pid_file": "a"}, {}, ("action",)),
])
def test_validation_errors_name_the_key(action: str, target: dict, params: dict,  # type: ignore[type-arg]
                                        key: tuple[str, ...]) -> None:
    with pytest.raises(ParamError) as info:
        ProcessDriver().validate(action, target, params)
    assert info.value.key_path == key


class TestProcessDriverContract(DriverContract):
    @pytest.fixture
    def case(self, sleeper, tmp_path: Path) -> ContractCase:  # type: ignore[no-untyped-def]
        proc, _ = sleeper
        return ContractCase(driver=driver(tmp_path), action="process.pause",
                            target={"pid_file": "sleeper.pid"}, params={},
                            faulted=lambda i: proc_state(int(i.id)) == "T",
                            settle=lambda check: wait_until(check, timeout=5))

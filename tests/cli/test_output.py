"""Output for pipelines and people (issue 12.12): `chaosrunner ... | head` keeps the exit
status and prints no BrokenPipeError; long target descriptions are cut in the middle."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, sleeping_process, wait_until

from chaosrunner.drivers.process import ProcessDriver, cmdline
from chaosrunner.spec.units import shorten_middle
from chaosrunner.testing.experiments import write_one_fault_experiment


def closed_pipe_run(*args: str, stderr_too: bool = False) -> tuple[int, str]:
    """Run chaosrunner with stdout (and maybe stderr) on a pipe whose reader is gone."""
    read, write = os.pipe()
    os.close(read)  # as `| head` after its lines: every write now fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "chaosrunner", *args], cwd=REPO,
                              stdout=write, stderr=write if stderr_too else subprocess.PIPE,
                              text=True, timeout=120, check=False)
    finally:
        os.close(write)
    return proc.returncode, proc.stderr or ""


@pytest.mark.parametrize(("args", "code"), [
    (("schema",), 0),
    (("validate", "experiments/instance-failure.yaml"), 0),
    (("validate", "no-such-file.yaml"), 4),
    (("--output", "json", "validate", "no-such-file.yaml"), 4),
])
def test_a_closed_pipe_keeps_the_exit_status(args: tuple[str, ...], code: int) -> None:
    returncode, err = closed_pipe_run(*args)
    assert returncode == code, err
    assert "BrokenPipeError" not in err and "Traceback" not in err
    assert closed_pipe_run(*args, stderr_too=True)[0] == code


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with sleeping_process(tmp_path / "sleeper.pid") as proc:
        yield proc


def test_a_run_whose_reader_went_away_exits_with_its_verdict(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    path = write_one_fault_experiment(tmp_path, "piped", "process.pause",
                                      "{pid_file: sleeper.pid}", duration="500ms",
                                      hypothesis="a closed pipe changes nothing", fault="freeze")
    for stderr_too in (False, True):
        code, err = closed_pipe_run(
            "run", str(path), "--state-dir", str(tmp_path / "state"),
            "--report-dir", str(tmp_path / f"report-{stderr_too}"), "--allow-exec",
            stderr_too=stderr_too)
        assert code == 0, err
        assert "BrokenPipeError" not in err and "Traceback" not in err
        assert (tmp_path / f"report-{stderr_too}" / "report.json").exists()


def test_shortened_in_the_middle() -> None:
    text = "/usr/bin/python3 /very/long/path/to/the/service/target.py --port 8001"
    short = shorten_middle(text, 40)
    assert len(short) == 40 and short.startswith("/usr/bin/py") and short.endswith("8001")
    assert "..." in short
    assert shorten_middle("short", 40) == "short"


def test_two_long_command_lines_stay_apart(tmp_path: Path) -> None:
    script = tmp_path / ("a-rather-long-directory-name-" * 3) / "target.py"
    script.parent.mkdir()
    script.write_text("import time; time.sleep(600)")
    procs = [subprocess.Popen([sys.executable, str(script), "--port", str(port)])
             for port in (8001, 8002)]
    try:
        # Popen returns once execve has closed the child's close-on-exec pipe, which is
        # before the kernel publishes the new argv: /proc/PID/cmdline reads empty until then.
        assert wait_until(lambda: all(cmdline(p.pid).endswith(("8001", "8002")) for p in procs))
        names = [ProcessDriver()._instance(p.pid).name for p in procs]  # type: ignore[union-attr]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert names[0].endswith("--port 8001") and names[1].endswith("--port 8002")
    assert all(len(n) <= len(f"pid {p.pid}: ") + 80 for n, p in zip(names, procs, strict=True))

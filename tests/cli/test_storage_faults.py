"""Storage faults around a real run (issue 10.4): the exit code is always the verdict's
(or 5), a report that cannot be written is said on stderr, and a state directory that
cannot be written at start is refused with exit 4 before anything is injected."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import chaosrunner, http_server, proc_state, wait_until
from storage import fill, read_only_from_now, tmpfs
from test_run_real import sleeper, write  # noqa: F401  (fixture)

from chaosrunner.engine.ledger import Ledger


def experiment(tmp_path: Path, url: str, duration: str) -> Path:
    """The fault pauses a sleeper, never the probed server: a 5 s probe timeout (and p99
    bound) keeps the verdict 'passed' on a loaded machine, where a 1 s one failed a probe
    now and then and with it the exit status these tests check."""
    return write(tmp_path, url, "sleeper.pid", duration=duration, timeout="5s")


def run(path: Path, state: Path, report: Path) -> subprocess.Popen[str]:
    return chaosrunner("run", str(path), "--state-dir", str(state), "--report-dir", str(report))


def test_a_full_report_dir_keeps_the_verdict_and_says_so(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:  # noqa: F811
    with http_server(tmp_path) as (url, _, _), tmpfs(tmp_path / "disk") as disk:
        fill(disk)
        proc = run(experiment(tmp_path, url, "1s"), tmp_path / "state",
                   disk / "report")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # the run passed: a full disk does not change that
    assert "Traceback" not in err
    assert "could not be written" in err and "No space left on device" in err
    assert proc_state(sleeper.pid) in ("S", "R")
    assert Ledger(tmp_path / "state").open_faults() == []


def test_a_state_dir_made_read_only_mid_run_keeps_the_verdict_and_the_report(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:  # noqa: F811
    state = tmp_path / "state"
    state.mkdir()
    with http_server(tmp_path) as (url, _, _):
        proc = run(experiment(tmp_path, url, "4s"), state,
                   tmp_path / "report")
        ledger = Ledger(state)
        assert wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
                          or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate()
        with read_only_from_now(state):
            out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert proc_state(sleeper.pid) in ("S", "R")  # reverted, though the ledger cannot say so
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["verdict"] == "passed" and data["exit_code"] == 0
    assert "not kept in the history" in err and "ledger could not record it" in err


def test_a_read_only_state_dir_at_start_is_refused_with_exit_4(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:  # noqa: F811
    with http_server(tmp_path) as (url, _, _), \
            tmpfs(tmp_path / "ro", read_only=True) as read_only:
        proc = run(experiment(tmp_path, url, "1s"), read_only / "state",
                   tmp_path / "report")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "Traceback" not in err and "--state-dir" in err and "ro/state" in err
    assert proc_state(sleeper.pid) in ("S", "R")
    assert not (tmp_path / "report" / "report.json").exists()


def test_a_full_state_dir_at_start_is_refused_with_exit_4(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:  # noqa: F811
    with http_server(tmp_path) as (url, _, _), tmpfs(tmp_path / "disk") as disk:
        (disk / "state").mkdir()
        fill(disk)
        proc = run(experiment(tmp_path, url, "1s"), disk / "state",
                   tmp_path / "report")
        out, err = proc.communicate(timeout=120)
        assert Ledger(disk / "state").open_faults() == []
    assert proc.returncode == 4, err
    assert "Traceback" not in err and "No space left on device" in err
    assert proc_state(sleeper.pid) in ("S", "R")

"""End to end through the CLI: real processes, real HTTP probe traffic, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, chaosrunner, http_server, proc_state, sleeping_process, wait_until

from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import probe_steady_state

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: pause-target
hypothesis: pausing the target is noticed
environment: {environment}
steady_state: {{from: steady.yaml, before: 1s, after: 3s, interval: 250ms}}
duration: {duration}
faults:
  - name: freeze
    action: process.pause
    target: {{pid_file: {pid_file}}}
success_criteria:
  - probe >= 99%
  - probe.p99 < {timeout}
abort:
  error_budget: {{slo: probe, burn_rate: 14.4, windows: [1s, 2s]}}
"""


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with sleeping_process(tmp_path / "sleeper.pid") as proc:
        yield proc


def write(tmp_path: Path, url: str, pid_file: str, duration: str = "20s",
          environment: str = "staging", timeout: str = "1s") -> Path:
    """`timeout`: the probes' timeout and p99 bound; a run whose fault leaves the probed
    server alone passes with a generous one however loaded the machine is."""
    (tmp_path / "steady.yaml").write_text(probe_steady_state(url, timeout=timeout,
                                                             p99=timeout))
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(pid_file=pid_file, duration=duration,
                                      environment=environment, timeout=timeout))
    return path


def run(tmp_path: Path, path: Path, *extra: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = chaosrunner("run", str(path), "--state-dir", str(tmp_path / "state"),
                       "--report-dir", str(tmp_path / "report"), *extra)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def report(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "report" / "report.json").read_text())  # type: ignore[no-any-return]


def test_pausing_the_service_aborts_and_resumes_it(tmp_path: Path) -> None:
    with http_server(tmp_path) as (url, server, _):
        code, out, err = run(tmp_path, write(tmp_path, url, "target.pid"))
        assert code == 2, err
        assert proc_state(server.pid) != "T"
        data = report(tmp_path)
        assert data["verdict"] == "aborted" and data["exit_code"] == 2
        assert "burn rate" in data["abort"]["reason"]
        assert data["faults"][0]["injected_at"] and data["faults"][0]["reverted_at"]
        for key in ("verdict", "exit_code", "experiment", "started_at", "ended_at", "phases",
                    "faults", "samples", "criteria", "abort", "budget", "recovery_seconds"):
            assert key in data
        for name in ("journal.jsonl", "report.md", "junit.xml", "report.html", "postmortem.md"):
            assert (tmp_path / "report" / name).exists(), name
        events = [json.loads(line)["event"] for line in
                  (tmp_path / "report" / "journal.jsonl").read_text().splitlines()]
        assert "inject" in events and "abort" in events and "revert" in events
        assert Ledger(tmp_path / "state").open_faults() == []


def start_long_run(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    path = write(tmp_path, url, "sleeper.pid", duration="60s")
    return chaosrunner("run", str(path), "--state-dir", str(tmp_path / "state"),
                       "--report-dir", str(tmp_path / "report"), *extra)


def wait_injected(tmp_path: Path, runner: subprocess.Popen[str]) -> None:
    ledger = Ledger(tmp_path / "state")
    ok = wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
                    or runner.poll() is not None, timeout=30)
    assert ok and runner.poll() is None, runner.communicate()


def test_recover_resumes_a_process_after_the_runner_is_sigkilled(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    with http_server(tmp_path) as (url, _, _):
        # Without the watchdog (tests/watchdog), `recover` by hand is what takes it back.
        runner = start_long_run(tmp_path, url, "--no-watchdog")
        wait_injected(tmp_path, runner)
        assert proc_state(sleeper.pid) == "T"
        runner.kill()
        runner.communicate()
        assert proc_state(sleeper.pid) == "T"  # the fault outlived the runner
        recover = chaosrunner("recover", "--state-dir", str(tmp_path / "state"))
        out, err = recover.communicate(timeout=30)
        assert recover.returncode == 0, err
        assert "reverted" in out and "process.pause" in out
        assert wait_until(lambda: proc_state(sleeper.pid) in ("S", "R"))
        assert Ledger(tmp_path / "state").open_faults() == []
        again = chaosrunner("recover", "--state-dir", str(tmp_path / "state"))
        assert "nothing to recover" in again.communicate(timeout=30)[0]
    # The killed run is in the history, with an honest verdict and what recover did.
    runs = chaosrunner("--output", "json", "runs", "--state-dir", str(tmp_path / "state"))
    rows = json.loads(runs.communicate(timeout=30)[0])
    assert [(r["experiment"], r["verdict"], r["exit_code"]) for r in rows] == [
        ("pause-target", "interrupted", 137)]
    assert "died before finishing its rollback" in rows[0]["reason"]
    assert "recover` took back 1 fault(s): process.pause on pid" in rows[0]["reason"]


@pytest.mark.parametrize(("signals", "code"), [
    ((signal.SIGINT, signal.SIGINT), 130),
    ((signal.SIGTERM,), 143),
])
def test_signals_roll_back_and_exit(tmp_path: Path, sleeper: subprocess.Popen[bytes],
                                    signals: tuple[int, ...], code: int) -> None:
    with http_server(tmp_path) as (url, _, _):
        runner = start_long_run(tmp_path, url)
        wait_injected(tmp_path, runner)
        for number in signals:
            if runner.poll() is None:
                runner.send_signal(number)
            wait_until(lambda: runner.poll() is not None, timeout=0.05)
        out, err = runner.communicate(timeout=30)
        assert runner.returncode == code, err
        assert proc_state(sleeper.pid) in ("S", "R")
        assert report(tmp_path)["verdict"] == "interrupted"
        assert Ledger(tmp_path / "state").open_faults() == []


def test_halt_aborts_a_running_experiment(tmp_path: Path, sleeper: subprocess.Popen[bytes]
                                          ) -> None:
    with http_server(tmp_path) as (url, _, _):
        runner = start_long_run(tmp_path, url)
        wait_injected(tmp_path, runner)
        halt = chaosrunner("halt", "--state-dir", str(tmp_path / "state"), "--reason", "stop!")
        assert halt.wait(timeout=30) == 0
        halt.communicate()
        out, err = runner.communicate(timeout=30)
        assert runner.returncode == 2, err
        assert proc_state(sleeper.pid) in ("S", "R")
        assert "halt: stop!" in report(tmp_path)["abort"]["reason"]


def test_refused_probe_is_not_started_with_one_line_reason(tmp_path: Path,
                                                           sleeper: subprocess.Popen[bytes]) -> None:
    code, out, err = run(tmp_path, write(tmp_path, "http://127.0.0.1:9/", "sleeper.pid"))
    assert code == 3
    assert "Traceback" not in err + out
    assert "ConnectError" in out + err
    assert proc_state(sleeper.pid) != "T"
    assert report(tmp_path)["verdict"] == "not_started"


def test_missing_target_process_is_a_clear_refusal(tmp_path: Path) -> None:
    with http_server(tmp_path) as (url, _, _):
        (tmp_path / "dead.pid").write_text("999999999")
        code, out, err = run(tmp_path, write(tmp_path, url, "dead.pid"))
    assert code == 3 and "Traceback" not in err
    assert "999999999" in out + err and "not running" in out + err


def test_production_needs_the_flag_and_dry_run_injects_nothing(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    with http_server(tmp_path) as (url, _, _):
        path = write(tmp_path, url, "sleeper.pid", environment="production")
        code, out, err = run(tmp_path, path)
        assert code == 3 and "--allow-production" in out + err
        dry = chaosrunner("run", str(path), "--dry-run", "--allow-production",
                          "--state-dir", str(tmp_path / "state"))
        out, err = dry.communicate(timeout=30)
        assert dry.returncode == 0, err
        assert "dry run" in out and f"pid {sleeper.pid}" in out
        assert proc_state(sleeper.pid) != "T"
        assert not Ledger(tmp_path / "state").path.exists()


def test_bad_file_exits_4_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("apiVersion: chaosrunner/v1\nkind: Experiment\nname: x\n")
    code, out, err = run(tmp_path, path)
    assert code == 4 and "Traceback" not in err
    assert "exp.yaml:" in err and "hypothesis: required key is missing" in err


# A signal at a chosen moment, deterministically: the runner sends it to itself there.
SIGNAL_AT = """
import os, signal, sys
import chaosrunner.cli.main as cli_main
import chaosrunner.app.run as cli_run
import chaosrunner.app.load as validate

point, names, sys.argv = sys.argv[1], sys.argv[2].split(","), ["chaosrunner", *sys.argv[3:]]

def fire():
    for name in names:
        os.kill(os.getpid(), getattr(signal, name))

def before(module, attribute):
    original = getattr(module, attribute)
    def wrapper(*args, **kwargs):
        fire()
        return original(*args, **kwargs)
    setattr(module, attribute, wrapper)

def after(module, attribute):
    original = getattr(module, attribute)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        fire()
        return result
    setattr(module, attribute, wrapper)

def on_last_flush(send):
    # The entry point's last flush of stdout/stderr, just before os._exit: the signal goes
    # to the process (the kernel hands it to the main thread) or to another thread (`send`);
    # then waits until its handler tripped (or it is pending), with that thread still alive.
    import select, threading
    import chaosrunner.cli.pipes as pipes
    original, calls = pipes.flush_standard_streams, []
    wakeup, woken = os.pipe()  # written by the C-level handler, in whichever thread
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    release = threading.Event()
    other = threading.Thread(target=release.wait)  # started unmasked, as a run's threads are
    other.start()
    def wrapper():
        calls.append(1)
        if len(calls) == 2:
            send(other)
            tripped = 0
            for _ in range(3000):  # the main thread runs the Python-level handler later
                waiting = {s.name for s in signal.sigpending()}
                if tripped + sum(name in waiting for name in names) >= len(names):
                    break
                if select.select([wakeup], [], [], 0.01)[0]:
                    tripped += len(os.read(wakeup, 64))
            release.set()
        original()
    pipes.flush_standard_streams = wrapper

def to_the_process(other):
    fire()

def to_another_thread(other):
    for name in names:
        signal.pthread_kill(other.ident, getattr(signal, name))

{"loading": lambda: before(validate, "load_runnable"),
 "reports": lambda: before(cli_run, "save_reports"),
 "after-main": lambda: after(cli_main, "main"),
 "exit": lambda: on_last_flush(to_the_process),
 "exit-thread": lambda: on_last_flush(to_another_thread)}[point]()
cli_main.entrypoint()
"""


@pytest.mark.parametrize(("point", "names", "code", "verdict"), [
    ("loading", "SIGTERM", 143, "interrupted"),
    ("reports", "SIGTERM", 143, "passed"),
    ("reports", "SIGINT,SIGINT", 130, "passed"),
    ("after-main", "SIGINT", 130, "passed"),
    ("after-main", "SIGTERM,SIGINT", 143, "passed"),
    ("exit", "SIGTERM", 143, "passed"),
    ("exit-thread", "SIGINT", 130, "passed"),
])
def test_a_signal_at_any_moment_of_a_run_ends_in_its_exit_status(
        tmp_path: Path, sleeper: subprocess.Popen[bytes], point: str, names: str, code: int,
        verdict: str) -> None:
    """Once a run has started, SIGINT exits 130 and SIGTERM 143, never death by the signal
    (status -2/-15), also while reports are written, after main() returned and up to the
    exit itself."""
    with http_server(tmp_path) as (url, _, _):
        path = write(tmp_path, url, "sleeper.pid", duration="1s", timeout="5s")
        proc = subprocess.Popen(
            [sys.executable, "-c", SIGNAL_AT, point, names, "run", str(path),
             "--state-dir", str(tmp_path / "state"), "--report-dir", str(tmp_path / "report")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert proc_state(sleeper.pid) in ("S", "R")
    assert report(tmp_path)["verdict"] == verdict
    assert Ledger(tmp_path / "state").open_faults() == []

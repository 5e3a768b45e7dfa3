"""A load fault composes with another fault in one run, and on rollback it stops first."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml
from helpers import chaosrunner, proc_state, sleeping_process, wait_until
from load_support import counting_server

from chaosrunner.cli.main import main
from chaosrunner.drivers.process import cmdline
from chaosrunner.load.driver import load_processes

pytestmark = pytest.mark.slow


def write_steady(directory: Path, url: str) -> None:
    """steady.yaml: probe availability of `url`/probe at 5/s, 90% target."""
    (directory / "steady.yaml").write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "s",
        "service_level_objectives": {"probe": {
            "sli": {"http": {"url": f"{url}/probe", "rate": "5/s"},
                    "stat": "availability"}, "target": "90%"}}}))


def test_pause_while_traffic_is_on_then_both_taken_back_load_first(tmp_path: Path) -> None:
    with sleeping_process(tmp_path / "victim.pid", 300) as sleeper:
        with counting_server() as server:
            write_steady(tmp_path, server.url)
            (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
                "apiVersion": "chaosrunner/v1", "kind": "Experiment", "name": "compose",
                "hypothesis": "a paused process while traffic is up",
                "steady_state": {"from": "steady.yaml", "before": "1s", "after": "2s",
                                 "interval": "500ms"},
                "duration": "6s",
                "faults": [
                    {"name": "traffic", "action": "load.http", "target": {"url": server.url},
                     "with": {"rate": "40/s"}},
                    {"name": "pause", "action": "process.pause",
                     "target": {"pid_file": "victim.pid"}, "at": "1s"}]}))
            code = main(["run", str(tmp_path / "exp.yaml"), "--report-dir",
                         str(tmp_path / "r"), "--state-dir", str(tmp_path / "state")])
            report = json.loads((tmp_path / "r" / "report.json").read_text())
            assert not server.busy(1.0)  # the load (and the probe) stopped
        assert code == 0, report["reason"]
        assert proc_state(sleeper.pid) != "T"  # resumed
        by_name = {f["name"]: f for f in report["faults"]}
        assert by_name["traffic"]["injected_at"] < by_name["pause"]["injected_at"]
        # Both were in at once (the pause came while the load ran) ...
        assert by_name["pause"]["injected_at"] < by_name["traffic"]["reverted_at"]
        # ... and the rollback stopped the load first, though it was injected first.
        assert by_name["traffic"]["reverted_at"] <= by_name["pause"]["reverted_at"]
        assert not load_processes(by_name["traffic"]["key"])
        assert server.count > 100


def test_runner_sigkill_then_recover_leaves_no_load(tmp_path: Path) -> None:
    with counting_server() as server:
        write_steady(tmp_path, server.url)
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
            "apiVersion": "chaosrunner/v1", "kind": "Experiment", "name": "killed",
            "hypothesis": "h", "steady_state": {"from": "steady.yaml", "before": "1s",
                                                "after": "1s", "interval": "1s"},
            "duration": "5m", "faults": [{"name": "traffic", "action": "load.http",
                                          "target": {"url": server.url},
                                          "with": {"rate": "30/s"}}]}))
        state = tmp_path / "state"
        runner = chaosrunner("run", str(tmp_path / "exp.yaml"), "--state-dir", str(state),
                             "--report-dir", str(tmp_path / "r"))
        try:
            assert wait_until(lambda: server.count > 100, timeout=60)
            assert _load_children("--key=killed-")
            runner.send_signal(signal.SIGKILL)
            runner.communicate(timeout=30)
            assert wait_until(lambda: not server.busy(1.0), timeout=30)  # no load left
            recover = chaosrunner("recover", "--state-dir", str(state))
            out, err = recover.communicate(timeout=120)
            assert recover.returncode == 0, out + err
            assert not server.busy(1.0)
            assert not _load_children("--key=killed-")
        finally:
            runner.kill()
            runner.communicate()


def _load_children(marker: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and "chaosrunner.load.child" in cmdline(int(p.name)) and marker in cmdline(int(p.name))]

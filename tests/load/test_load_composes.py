"""A load fault composes with another fault in one run, and on rollback it stops first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import proc_state
from load_support import counting_server

from chaosrunner.cli.main import main
from chaosrunner.drivers.load import load_processes

pytestmark = pytest.mark.slow


def test_pause_while_traffic_is_on_then_both_taken_back_load_first(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    (tmp_path / "victim.pid").write_text(str(sleeper.pid))
    try:
        with counting_server() as server:
            (tmp_path / "steady.yaml").write_text(yaml.safe_dump({
                "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "s",
                "service_level_objectives": {"probe": {
                    "sli": {"http": {"url": f"{server.url}/probe", "rate": "5/s"},
                            "stat": "availability"}, "target": "90%"}}}))
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
    finally:
        sleeper.kill()
        sleeper.wait()

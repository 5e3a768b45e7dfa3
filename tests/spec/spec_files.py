"""The experiment and steady state the spec tests vary, and `chaosrunner validate` on them.

    code, err = validate(tmp_path, capsys, experiment=EXPERIMENT.replace("10s", "-10s"))
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.cli.main import main

STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: s
service_level_objectives:
  probe:
    sli: {http: {url: "http://127.0.0.1:1/x", rate: 20/s, timeout: 1s}}
    target: 99%
"""

EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: demo
hypothesis: it holds
steady_state: {from: steady.yaml, before: 2s, after: 2s, interval: 250ms}
duration: 10s
faults:
  - name: pause
    action: process.pause
    target: {pid_file: x.pid}
"""


def write(tmp_path: Path, steady: str = STEADY, experiment: str = EXPERIMENT) -> Path:
    """Write steady.yaml and exp.yaml into `tmp_path`: the path of exp.yaml."""
    (tmp_path / "steady.yaml").write_text(steady)
    path = tmp_path / "exp.yaml"
    path.write_text(experiment)
    return path


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], steady: str = STEADY,
             experiment: str = EXPERIMENT) -> tuple[int, str]:
    """Write steady.yaml and exp.yaml into `tmp_path`, validate exp.yaml: (exit code, stderr)."""
    code = main(["validate", str(write(tmp_path, steady, experiment))])
    return code, capsys.readouterr().err

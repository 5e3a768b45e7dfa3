from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaosrunner.testing.fakes import World

STEADY = """
apiVersion: chaosrunner/v1
kind: SteadyState
name: fake
service_level_objectives:
  availability:
    sli: {http: {url: "http://127.0.0.1:1/", rate: 10/s}}
    target: 99%
    window: 1h
  latency:
    sli: {http: {url: "http://127.0.0.1:1/"}, stat: p99}
    target: 500ms
    op: "<"
"""

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: lose-one
hypothesis: losing one of four instances keeps availability above 70%
steady_state: {{from: steady.yaml, before: 2s, after: 3s, interval: 250ms}}
duration: {duration}
blast_radius: {{max_targets: 2, max_percent: 50%}}
faults:
  - name: down
    action: fake.down
    target: {{prefix: api}}
    select: {select}
{extra_fault}
success_criteria:
  - availability >= {criterion}
abort:
  error_budget: {{slo: availability, burn_rate: {burn}, windows: [1s, 2s]}}
"""


@pytest.fixture
def world() -> World:
    return World(["api-1", "api-2", "api-3", "api-4"])


@pytest.fixture
def write_experiment(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(duration: str = "5s", select: str = "{random: 1}", criterion: str = "70%",
              burn: float = 1000, extra_fault: str = "", steady: str = STEADY) -> Path:
        (tmp_path / "steady.yaml").write_text(textwrap.dedent(steady))
        path = tmp_path / "exp.yaml"
        path.write_text(EXPERIMENT.format(duration=duration, select=select, criterion=criterion,
                                          burn=burn, extra_fault=extra_fault))
        return path

    return write

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaosrunner.testing.experiments import fake_steady_state, write_fake_experiment
from chaosrunner.testing.fakes import World

STEADY = fake_steady_state()


@pytest.fixture
def world() -> World:
    return World(["api-1", "api-2", "api-3", "api-4"])


@pytest.fixture
def write_experiment(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(duration: str = "5s", select: str = "{random: 1}", criterion: str = "70%",
              burn: float = 1000, extra_fault: str = "", steady: str = STEADY) -> Path:
        return write_fake_experiment(tmp_path, duration=duration, select=select,
                                     criterion=criterion, burn=burn, extra_fault=extra_fault,
                                     steady=textwrap.dedent(steady))

    return write

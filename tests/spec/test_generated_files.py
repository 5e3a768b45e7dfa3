"""A small run of the hostile-file campaign (reliability/hostile_files.py) for CI: generated
files end in exit 0 or exit 4 at file:line, never a traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

CAMPAIGN = Path(__file__).resolve().parents[2] / "reliability" / "hostile_files.py"


def load_campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostile_files", CAMPAIGN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_generated_hostile_files_small_run() -> None:
    in_process, cli = load_campaign().run_campaign(150, 2)
    replay = f"replay: CHAOSRUNNER_HOSTILE_SEED={in_process.seed}"
    assert sum(in_process.outcomes.values()) == 150, replay
    assert sum(cli.outcomes.values()) == 2, replay
    assert not in_process.problems, (replay, in_process.problems[:3])
    assert not cli.problems, (replay, cli.problems[:3])


def test_a_seed_replays_the_same_files(monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = load_campaign()
    monkeypatch.setenv("CHAOSRUNNER_HOSTILE_SEED", "20261129")
    first, _ = campaign.run_campaign(30, 0)
    again, _ = campaign.run_campaign(30, 0, seed=20261129)
    assert first.seed == again.seed == 20261129
    assert first.outcomes == again.outcomes
    assert "(seed 20261129)" in first.line("generated files")

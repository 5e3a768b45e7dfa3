"""Review of `recover` and of `run`'s exit code around the engine (fakes, no real faults)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.drivers.base import Handle, Instance, register_instance, unregister_instance
from chaosrunner.engine.ledger import Ledger
from chaosrunner.slo.sources.base import register_factory, unregister_factory
from chaosrunner.testing.fakes import FakeDriver, FakeSource, World


@pytest.fixture
def world() -> Iterator[World]:
    world = World(["api-1", "api-2"])
    register_instance(FakeDriver(world))
    register_factory("http", FakeSource.factory(world))
    yield world
    unregister_instance("fake")
    unregister_factory("http")


def handle(key: str, name: str) -> Handle:
    return Handle.provisional("fake.down", Instance("fake", name, name), {}, key)


def test_recover_leaves_alone_a_runner_that_starts_while_it_reads_the_ledger(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.recover import command_recover

    state = tmp_path / "state"
    ledger = Ledger(state)
    ledger.record_intent("dead-run", "old", handle("dead-run.old.0", "api-1"))
    real_live_runs = Ledger.live_runs

    def live_runs_then_a_runner_starts(self: Ledger) -> set[str]:
        live = real_live_runs(self)
        # A new experiment starts right now: it registers, then records its intent.
        (state / "active" / "new-run.json").write_text(json.dumps({"pid": os.getppid()}))
        ledger.record_intent("new-run", "fresh", handle("new-run.fresh.0", "api-2"))
        return live

    monkeypatch.setattr(Ledger, "live_runs", live_runs_then_a_runner_starts)
    args = argparse.Namespace(state_dir=str(state), force=False, output="json")
    assert command_recover(args) == 0
    reverted = [key for kind, key in world.log if kind == "revert"]
    assert "dead-run.old.0" in reverted
    assert "new-run.fresh.0" not in reverted  # a live runner's fault is its own to revert
    capsys.readouterr()

"""`recover` takes back what a dead runner left (and leaves a live one alone); `run` keeps
its exit code when its reports cannot be written (fakes, no real faults)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from chaosrunner.drivers.base import Handle, Instance
from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import write_fake_experiment
from chaosrunner.testing.fakes import World, fake_backends, fake_drivers


@pytest.fixture
def world() -> World:
    return World(["api-1", "api-2"])


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
    args = argparse.Namespace(state_dir=str(state), force=False, output="json",
                              kubernetes=False, namespace=None)
    assert command_recover(args, fake_drivers(world)) == 0
    reverted = [key for kind, key in world.log if kind == "revert"]
    assert "dead-run.old.0" in reverted
    assert "new-run.fresh.0" not in reverted  # a live runner's fault is its own to revert
    capsys.readouterr()


def test_a_report_that_cannot_be_written_keeps_the_exit_code_of_the_run(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.app import run as run_cli
    from chaosrunner.engine.context import RunOptions

    path = write_fake_experiment(
        tmp_path, name="stuck", duration="250ms", before="250ms", after="250ms",
        select="{names: [api-1]}", criterion="40%", latency=False,
        blast_radius="{max_targets: 1, max_percent: 50%}")
    world.fail_revert = 100  # the fault cannot be taken back: exit 5, run `recover`

    def disk_full(*args: object) -> list[Path]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_cli, "write_all", disk_full)
    options = RunOptions(state_dir=tmp_path / "state", report_dir=tmp_path / "report",
                         revert_retries=1)
    report = run_cli.run_file(path, options, output="json",
                              backends=fake_backends(world))
    assert report.exit_code == 5 and report.verdict == "rollback_incomplete"
    err = capsys.readouterr().err
    assert "No space left on device" in err
    world.fail_revert = 0

"""The one promise: every fault injected is taken back, and the verdict says so.

Each test is a path that used to leave a fault behind, lose track of it in the ledger,
or end without a report / with the wrong exit code.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.runner import Run
from chaosrunner.errors import StateError
from chaosrunner.report.model import RunReport
from chaosrunner.testing.fakes import World, fake_run

SECOND = """  - name: second
    action: fake.down
    target: {prefix: api}
    select: {names: [api-2]}
    at: 1s"""


def make_run(world: World, path: Path, tmp_path: Path,
             fail: Callable[[], bool] | None = None, **options: object) -> Run:
    settings = RunOptions(state_dir=tmp_path / "state", seed=1, **options)  # type: ignore[arg-type]
    return fake_run(path, world, settings, fail=fail)


def test_ledger_write_failure_on_done_does_not_stop_the_rollback(
        world: World, write_experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_run = make_run(world, write_experiment(extra_fault=SECOND, select="{names: [api-1]}",
                                        duration="5s", criterion="40%"), tmp_path)

    def disk_full(self: Ledger, run_id: str, key: str, how: str = "reverted") -> None:
        raise StateError("cannot write ledger: No space left on device")

    monkeypatch.setattr(Ledger, "record_done", disk_full)
    report = asyncio.run(the_run.execute())
    assert world.down == set()  # both faults taken back, not just the first one
    assert sorted(k for kind, k in world.log if kind == "revert") == \
        sorted(k for kind, k in world.log if kind == "inject")
    assert report.verdict == "passed"
    assert any("ledger" in e.get("message", "") for e in report.events
               if e["event"] == "warning")


def test_ledger_write_failure_on_intent_aborts_with_a_report(
        world: World, write_experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_run = make_run(world, write_experiment(extra_fault=SECOND, select="{names: [api-1]}",
                                        duration="5s"), tmp_path)
    real = Ledger.record_intent
    calls: list[str] = []

    def fail_second(self: Ledger, run_id: str, fault: str, handle: object,
                    **kwargs: object) -> None:
        calls.append(fault)
        if fault == "second":
            raise StateError("cannot write ledger: No space left on device")
        real(self, run_id, fault, handle)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "record_intent", fail_second)
    report = asyncio.run(the_run.execute())  # used to raise StateError: no report at all
    assert report.verdict == "aborted" and report.exit_code == 2
    assert "ledger" in (report.reason or "")
    assert world.down == set()
    assert [kind for kind, _ in world.log] == ["inject", "revert"]  # second never injected


def test_inject_still_running_when_rollback_gives_up_is_rollback_incomplete(
        world: World, write_experiment, tmp_path: Path) -> None:
    gate = threading.Event()
    world.inject_gate = gate  # the backend hangs in inject
    the_run = make_run(world, write_experiment(duration="60s"), tmp_path, revert_timeout=0.05,
                       revert_retries=1)

    async def scenario() -> RunReport:
        async def halt_while_injecting() -> None:
            while not the_run.injections:
                await asyncio.sleep(0.01)
            the_run.request_abort(None, "halt: test")

        helper = asyncio.ensure_future(halt_while_injecting())
        report = await the_run.execute()
        await helper
        gate.set()  # the hung inject finally goes through, after the rollback
        return report

    report = asyncio.run(scenario())
    assert world.down  # the fault landed after the revert: it IS left behind...
    # ...so the run must say so, and the ledger must still hold it for `recover`.
    assert report.verdict == "rollback_incomplete" and report.exit_code == 5
    open_faults = Ledger(tmp_path / "state").open_faults()
    assert [f.handle.key for f in open_faults] == [report.faults[0].key]


def test_timed_revert_that_fails_is_retried_at_rollback_and_verdict_follows(
        world: World, write_experiment, tmp_path: Path) -> None:
    extra = """    at: 1s
    for: 1s"""
    the_run = make_run(world, write_experiment(extra_fault=extra, duration="5s"), tmp_path,
                       revert_retries=1)
    world.fail_revert = 1  # the timed revert fails once; the rollback's retry works
    report = asyncio.run(the_run.execute())
    assert world.down == set()
    assert Ledger(tmp_path / "state").open_faults() == []
    assert report.faults[0].reverted_at
    assert report.verdict != "rollback_incomplete", report.reason
    assert report.exit_code in (0, 1)


def test_a_source_bug_during_faults_aborts_and_still_reports(
        world: World, write_experiment, tmp_path: Path) -> None:
    def broken() -> bool:
        if world.down:
            raise RuntimeError("bug in a source")
        return False

    the_run = make_run(world, write_experiment(duration="5s"), tmp_path, fail=broken)
    report = asyncio.run(the_run.execute())  # used to raise RuntimeError: no report
    assert world.down == set()
    assert report.verdict == "aborted" and report.exit_code == 2
    assert "bug in a source" in (report.reason or "")


def test_a_torn_ledger_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    from chaosrunner.drivers.base import Handle, Instance

    ledger = Ledger(tmp_path / "state")
    ledger.ensure()
    ledger.path.write_bytes(b'{"type":"intent","run":"r0","fau')  # power loss mid-write
    handle = Handle.provisional("fake.down", Instance("fake", "api-1", "api-1"), {}, "r1.a.0")
    ledger.record_intent("r1", "a", handle)
    assert [f.handle.key for f in ledger.open_faults()] == ["r1.a.0"]

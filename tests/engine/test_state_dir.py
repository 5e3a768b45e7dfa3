"""The state directory is trusted (recover runs what its ledger names), so it is protected
(issue 10.7): 0700 and 0600 whatever the umask, never someone else's or writable by
others, never written or read through a symlink."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.drivers.base import Handle, Instance
from chaosrunner.engine.ledger import Ledger
from chaosrunner.errors import StateError

NOBODY = 65534


def handle(key: str) -> Handle:
    return Handle.provisional("fake.down", Instance("fake", "api-1", "api-1"), {}, key)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("value", [0o000, 0o022, 0o077, 0o277])
def test_modes_whatever_the_umask(tmp_path: Path, value: int) -> None:
    ledger = Ledger(tmp_path / "state")
    with umask(value):
        ledger.record_intent("r", "f", handle("r.f.0"))
        marker = ledger.register_runner("r", "x")
        halt = ledger.halt("stop")
    assert mode(tmp_path / "state") == 0o700 and mode(tmp_path / "state" / "active") == 0o700
    assert mode(ledger.path) == 0o600 and mode(marker) == 0o600 and mode(halt) == 0o600
    ledger.unregister_runner("r")


@pytest.mark.parametrize("bits", [0o020, 0o002, 0o777])
def test_a_state_dir_writable_by_others_is_refused(tmp_path: Path, bits: int) -> None:
    state = tmp_path / "state"
    Ledger(state).record_intent("r", "f", handle("r.f.0"))
    os.chmod(state, 0o700 | bits)
    with pytest.raises(StateError, match="writable by group or others"):
        Ledger(state).record_intent("r", "f", handle("r.f.1"))
    with pytest.raises(StateError, match="writable by group or others"):
        Ledger(state).open_faults()


def test_a_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    state = tmp_path / "state"
    Ledger(state).record_intent("r", "f", handle("r.f.0"))
    os.chown(state, NOBODY, NOBODY)
    with pytest.raises(StateError, match="owned by uid 65534"):
        Ledger(state).open_faults()
    with pytest.raises(StateError, match="owned by uid 65534"):
        Ledger(state).halt("stop")


def symlinked(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A state directory whose `name` is a symlink to a file outside it: (state, file)."""
    state = tmp_path / "state"
    Ledger(state).ensure()
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (state / name).symlink_to(target)
    return state, target


def test_the_ledger_is_never_appended_through_a_symlink(tmp_path: Path) -> None:
    state, target = symlinked(tmp_path, "ledger.jsonl")
    with pytest.raises(StateError, match="symlink"):
        Ledger(state).record_intent("r", "f", handle("r.f.0"))
    with pytest.raises(StateError, match="symlink"):
        Ledger(state).open_faults()
    assert target.read_text() == "precious\n"


def test_halt_never_overwrites_what_a_symlinked_halt_file_points_to(tmp_path: Path) -> None:
    state, target = symlinked(tmp_path, "HALT")
    with pytest.raises(StateError, match="symlink"):
        Ledger(state).halt("stop")
    assert target.read_text() == "precious\n"
    # The button still works for runners: a halt file there, whatever it is, halts.
    assert Ledger(state).halt_reason() is not None


PLANTED = """{"type":"intent","run":"r","fault":"f","key":"r.f.0","handle":{"driver":"python",\
"action":"python.call","instance":{"kind":"python","id":"x","name":"x"},\
"params":{"revert":"os:system"},"key":"r.f.0","data":{}}}
"""


@pytest.mark.parametrize("how", ["group-writable ledger", "ledger of another user"])
def test_recover_runs_nothing_from_a_ledger_it_cannot_vouch_for(
        tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.main import main

    state = tmp_path / "state"
    Ledger(state).ensure()
    ledger = state / "ledger.jsonl"
    ledger.write_text(PLANTED)
    if how == "group-writable ledger":
        os.chmod(ledger, 0o664)
    elif os.geteuid() == 0:
        os.chown(ledger, NOBODY, NOBODY)
    else:
        pytest.skip("chown to another user needs root")
    assert main(["recover", "--state-dir", str(state)]) == 4
    err = capsys.readouterr().err
    assert "ledger" in err and "not run" in err


def test_recover_refuses_a_state_dir_writable_by_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.recover import command_recover

    state = tmp_path / "state"
    Ledger(state).record_intent("r", "f", handle("r.f.0"))
    os.chmod(state, 0o777)
    with pytest.raises(StateError):
        command_recover(argparse.Namespace(state_dir=str(state), force=False, output=None, kubernetes=False,
                                           namespace=None))


@pytest.mark.parametrize("run", ["drain-20260101T000000Z-ab12", "prüfung-20260101T000000Z-ab12"])
def test_the_faults_of_one_run_are_exactly_its_own(tmp_path: Path, run: str) -> None:
    """The watchdog reads only its run's lines (every second, from a ledger of every run
    ever): not a longer run id that starts with its own, nor a key that contains it."""
    ledger = Ledger(tmp_path / "state")
    ledger.record_intent(run, "down", handle(f"{run}.down.0"))
    ledger.record_intent(f"{run}-2", "down", handle(f"{run}.down.1"))
    ledger.record_intent("other", "down", handle(f"{run}.down.2"))
    ledger.record_injected(run, "down", handle(f"{run}.down.0"))
    ledger.record_intent(run, "late", handle(f"{run}.late.0"))
    ledger.record_done(run, f"{run}.late.0")
    [mine] = ledger.open_faults(run)
    assert (mine.run_id, mine.handle.key, mine.confirmed) == (run, f"{run}.down.0", True)
    assert [r["type"] for r in ledger.records(run)] == ["intent", "injected", "intent", "done"]
    assert len(ledger.open_faults()) == 3


@contextlib.contextmanager
def frozen_writer(ledger: Ledger, torn: bytes = b"") -> Iterator[None]:
    """Another writer stopped mid-append: it holds the ledger's lock (and wrote `torn`,
    part of a line)."""
    import fcntl

    ledger.record_intent("frozen", "down", handle("frozen.down.0"))
    fd = os.open(ledger.path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, torn)
        yield
    finally:
        os.close(fd)


@pytest.mark.parametrize("torn", [b"", b'{"type":"done","key":"froz'])
def test_a_writer_frozen_with_the_lock_delays_a_record_but_does_not_stop_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torn: bytes) -> None:
    """The watchdog records each revert before the next: a runner SIGSTOPped in the middle
    of its own append (holding the lock) must not hang it."""
    from chaosrunner.engine import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "APPEND_LOCK_WAIT", 0.3)
    ledger = Ledger(tmp_path / "state")
    with frozen_writer(ledger, torn):
        ledger.record_done("frozen", "frozen.down.0", how="watchdog")
    assert ledger.open_faults() == []
    [done] = [r for r in ledger.records() if r["type"] == "done"]
    assert done["how"] == "watchdog"

"""Scheduling rules without processes: what is due, file checks, exit codes, the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gameday_support import PASS  # type: ignore[import-not-found]

from chaosrunner.errors import InvalidInput, Refused, SpecError
from chaosrunner.gameday.lock import LOCK_FD_ENV, acquire_lock, gameday_lock, release_lock
from chaosrunner.gameday.schedule import (
    Entry,
    Scheduler,
    is_due,
    load_entries,
    next_slot,
    previous_slot,
    worst_exit_code,
)
from chaosrunner.testing.fakes import World, fake_drivers

TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


def test_previous_and_next_slot() -> None:
    assert previous_slot("0 10 * * TUE", TUESDAY_10) == TUESDAY_10  # the slot itself counts
    assert previous_slot("0 10 * * TUE", TUESDAY_10 - timedelta(seconds=1)) == \
        TUESDAY_10 - timedelta(days=7)
    assert next_slot("0 10 * * TUE", TUESDAY_10) == TUESDAY_10 + timedelta(days=7)
    assert next_slot("* * * * * */2", TUESDAY_10) == TUESDAY_10 + timedelta(seconds=2)


@pytest.mark.parametrize(("late", "last", "due"), [
    (timedelta(0), None, True),
    (timedelta(minutes=4, seconds=59), None, True),
    (timedelta(minutes=5, seconds=1), None, False),  # too late: wait for the next slot
    (timedelta(minutes=1), TUESDAY_10 - timedelta(days=7), True),  # last week's run
    (timedelta(minutes=1), TUESDAY_10 + timedelta(seconds=3), False),  # already ran
    (timedelta(minutes=1), TUESDAY_10, False),
])
def test_is_due(late: timedelta, last: datetime | None, due: bool) -> None:
    assert is_due(TUESDAY_10, TUESDAY_10 + late, last, GRACE) is due


def test_worst_exit_code() -> None:
    assert worst_exit_code([]) == 0
    assert worst_exit_code([0, 3, None]) == 3
    assert worst_exit_code([3, 1]) == 1
    assert worst_exit_code([2, 143, 1]) == 143
    assert worst_exit_code([143, 5]) == 5


def test_entries_need_a_schedule_and_a_unique_name(
        world: World, write_gameday: Callable[..., Path], tmp_path: Path) -> None:
    unscheduled = write_gameday([("first", PASS)], name="plain")
    with pytest.raises(SpecError, match="has no `schedule:`"):
        load_entries([unscheduled], drivers=fake_drivers(world))
    scheduled = write_gameday([("first", PASS)], name="weekly",
                              extra='schedule: "0 10 * * TUE"\n')
    [entry] = load_entries([scheduled, scheduled], drivers=fake_drivers(world))  # the same file twice is one entry
    assert (entry.name, entry.schedule) == ("weekly", "0 10 * * TUE")
    twin = tmp_path / "twin.yaml"
    twin.write_text(scheduled.read_text())
    with pytest.raises(InvalidInput, match="share the name weekly"):
        load_entries([scheduled, twin], drivers=fake_drivers(world))


def test_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path: Path) -> None:
    fd = acquire_lock(tmp_path, "first")
    assert fd is not None
    try:
        assert acquire_lock(tmp_path, "second") is None
        with pytest.raises(Refused, match=r"pid .*game day first"), gameday_lock(tmp_path, "x"):
            pass
    finally:
        release_lock(fd)
    with gameday_lock(tmp_path, "second"):
        assert acquire_lock(tmp_path, "third") is None
    fd = acquire_lock(tmp_path, "fourth")
    assert fd is not None
    release_lock(fd)


HOLD = """
import sys, time
from pathlib import Path
from chaosrunner.gameday.lock import acquire_lock
fd = acquire_lock(Path(sys.argv[1]), "other-process")
print("held" if fd is not None else "busy", flush=True)
time.sleep(float(sys.argv[2]))
"""

USE_INHERITED = """
import sys
from pathlib import Path
from chaosrunner.gameday.lock import gameday_lock
from chaosrunner.errors import Refused
try:
    with gameday_lock(Path(sys.argv[1]), "child"):
        print("ran")
except Refused:
    print("refused")
"""


def python(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_lock_holds_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    holder = python(HOLD, str(tmp_path), "60")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert acquire_lock(tmp_path, "here") is None
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock
        holder.communicate()
    fd = acquire_lock(tmp_path, "here")
    assert fd is not None
    release_lock(fd)


def test_a_child_given_the_held_lock_runs_and_others_do_not(tmp_path: Path) -> None:
    fd = acquire_lock(tmp_path, "scheduler")
    assert fd is not None
    try:
        child = python(USE_INHERITED, str(tmp_path), pass_fds=(fd,),
                       env={**os.environ, LOCK_FD_ENV: str(fd)})
        assert child.communicate(timeout=30)[0].strip() == "ran"
        stranger = python(USE_INHERITED, str(tmp_path))
        assert stranger.communicate(timeout=30)[0].strip() == "refused"
        # A stale variable naming a descriptor that is not the lock is ignored.
        stale = python(USE_INHERITED, str(tmp_path), env={**os.environ, LOCK_FD_ENV: "0"})
        assert stale.communicate(timeout=30)[0].strip() == "refused"
    finally:
        release_lock(fd)


class VirtualTime:
    """The scheduler's clock and its idle wait, in virtual seconds."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timedelta(seconds=timeout or 0)
        return False


class RecordingScheduler(Scheduler):
    """Records the slots it starts; each game day takes `took` virtual seconds."""

    took: timedelta = timedelta(seconds=25)
    stop_after: int = 3

    def start(self, entry: Entry, slot: datetime) -> None:  # type: ignore[override]
        self.started.append((slot, self.now()))
        self.now.now += self.took  # type: ignore[attr-defined]
        if len(self.started) >= self.stop_after:
            self.stop_signal = "SIGTERM"
        return None


@pytest.mark.parametrize(("grace", "expected"), [
    # A run of 25 s from the 10:00:10 slot ends at 10:00:35; with 5 s of grace the slots
    # at :20 and :30 are dropped, with 10 s the :30 one still starts, late, right after.
    (5, [(10, 10), (40, 40), (70, 70)]),
    (10, [(10, 10), (30, 35), (60, 60)]),
])
def test_long_running_scheduler_never_overlaps_and_honours_grace(
        grace: int, expected: list[tuple[int, int]]) -> None:
    start = datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)
    clock = VirtualTime(start)
    scheduler = RecordingScheduler(
        entries=[Entry(Path("x.yaml"), "x", "* * * * * */10")], state_dir=Path("unused"),
        report_root=Path("unused"), grace=timedelta(seconds=grace), log=lambda _: None,
        now=clock)
    scheduler.started = []  # type: ignore[attr-defined]
    scheduler._wake = clock  # type: ignore[assignment]
    assert scheduler.run_forever() == 0
    base = start.replace(second=0)
    assert scheduler.started == [  # type: ignore[attr-defined]
        (base + timedelta(seconds=slot), base + timedelta(seconds=at)) for slot, at in expected]

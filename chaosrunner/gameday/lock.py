"""One game day at a time per state directory: an `flock` on `<state_dir>/gameday.lock`.

flock holds across processes (two schedulers, a scheduler and an operator's `chaosrunner
gameday`) and is released by the kernel when its holder dies, even by SIGKILL, so a crash
never leaves a stale lock behind.

A scheduler takes the lock *before* it starts the `chaosrunner gameday` child and passes
the locked descriptor to it (LOCK_FD_ENV). A flock lock belongs to the open file
description, which parent and child then share: the child holds the lock too, without a
window in which a second scheduler could slip in, and the lock stays held while either
of them lives.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from chaosrunner.errors import Refused, StateError
from chaosrunner.timestamps import iso

LOCK_FILE = "gameday.lock"
LOCK_FD_ENV = "CHAOSRUNNER_GAMEDAY_LOCK_FD"


def lock_path(state_dir: Path) -> Path:
    return Path(state_dir) / LOCK_FILE


@contextlib.contextmanager
def gameday_lock(state_dir: Path, name: str) -> Iterator[None]:
    """Hold the game-day lock for the body, or raise Refused (exit 3) naming its holder."""
    if inherited_lock(state_dir) is not None:
        yield  # the scheduler that started us holds it, and releases it
        return
    fd = acquire_lock(state_dir, name)
    if fd is None:
        raise Refused(f"another game day is running ({lock_holder(state_dir)}); not starting "
                      f"{name}. Wait for it to finish, or stop it with `chaosrunner halt`")
    try:
        yield
    finally:
        release_lock(fd)


def acquire_lock(state_dir: Path, name: str) -> int | None:
    """The locked descriptor of the lock file, or None when another process holds it."""
    path = lock_path(state_dir)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as Ledger.ensure
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise StateError(f"cannot open the game-day lock {path}: {exc.strerror or exc}; check "
                         "that --state-dir is writable") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    # Who holds it: what a second scheduler or an operator is told.
    holder = f"pid {os.getpid()}, game day {name}, since {iso(datetime.now(UTC))}\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def lock_holder(state_dir: Path) -> str:
    """'lock .chaosrunner/gameday.lock held by pid 12, game day q4-checkout, since ...'."""
    try:
        text = lock_path(state_dir).read_text().strip()
    except OSError:
        text = ""
    return f"lock {lock_path(state_dir)} held by {text or 'another process'}"


def inherited_lock(state_dir: Path) -> int | None:
    """The descriptor a scheduler passed us, if it really is this state dir's held lock."""
    raw = os.environ.get(LOCK_FD_ENV)
    if not raw:
        return None
    try:
        fd = int(raw)
        if not os.path.samestat(os.fstat(fd), os.stat(lock_path(state_dir))):
            return None
        # Ours already (shared open file description): succeeds at once. Anything else —
        # a stale variable naming an unrelated descriptor — fails and is ignored.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ValueError, OSError):
        return None
    return fd

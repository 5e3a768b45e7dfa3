"""The ledger: an append-only, fsynced record of every fault injected and taken back.

Before each injection the runner appends an `intent` record holding the provisional
handle; after inject, an `injected` record with the full handle; after revert, a `done`
record. Whatever has an intent and no done is still (possibly) in effect, and
`chaosrunner recover` takes it back, in reverse order, in a fresh process.

The state directory also holds one file per live runner (`active/<run_id>.json`, locked
with flock by its runner for the runner's lifetime) so that `recover` leaves a live
runner's faults to that runner, and the halt file that `chaosrunner halt` writes
(one of the halt sources of chaosrunner.engine.halt).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosrunner.drivers.base import Handle
from chaosrunner.errors import StateError

HALT_FILE = "HALT"

LEDGER_FILE = "ledger.jsonl"
# How long a record waits for another writer's lock. A writer holds it only for one line's
# write and fsync; one holding it longer is frozen (SIGSTOP, a frozen cgroup) and must not
# keep the watchdog or `recover` from recording, and going on to, the next revert.
APPEND_LOCK_WAIT = 5.0


@dataclass(frozen=True)
class OpenFault:
    """A fault with an intent record and no done record."""

    run_id: str
    fault: str
    handle: Handle
    confirmed: bool  # an `injected` record exists
    since: float | None = None  # epoch seconds of the intent record
    deadline: float | None = None  # epoch seconds after which the fault must be taken back


class Ledger:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LEDGER_FILE
        self._held: dict[str, int] = {}  # run id -> the locked marker of a runner here

    def ensure(self) -> None:
        """Create the state directory (0700, whatever the umask) or check the one there:
        StateError unless only this user can write it."""
        for directory in (self.state_dir, self.state_dir / "active"):
            try:
                directory.mkdir(mode=0o700, parents=True)
                os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask
            except FileExistsError:
                pass
            except OSError as exc:
                raise StateError(f"cannot create state directory {directory}: {exc.strerror}; "
                                 "pass --state-dir to a writable place") from None
            self.check_trusted(directory)

    def check_trusted(self, directory: Path | None = None) -> None:
        """StateError unless `directory` (default: the state directory) is a directory this
        user owns and nobody else may write: what is in it is run by `recover`."""
        directory = directory or self.state_dir
        try:
            info = os.stat(directory)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot use state directory {directory}: {exc.strerror}") from None
        problem = _untrusted(info, directory)
        if problem is not None:
            raise StateError(f"state directory {problem}; refusing to use it (what the "
                             "ledger names is run by `recover`): fix its owner and mode "
                             "(chmod 700) or pass --state-dir to a directory of your own")

    def check_writable(self) -> None:
        """StateError (exit 4) unless the state directory takes a durable write now: a run
        must not inject what its ledger could not hold for `recover`."""
        self.ensure()
        probe = self.state_dir / f".write-check-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, b"{}\n" * 64)
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink()
        except OSError as exc:
            raise StateError(f"state directory {self.state_dir} cannot be written: "
                             f"{exc.strerror or exc}; nothing was injected; pass --state-dir "
                             "to a writable place") from None

    def record_intent(self, run_id: str, fault: str, handle: Handle,
                      deadline: float | None = None) -> None:
        """`deadline` (epoch seconds): the fault's planned end plus a margin; past it the
        watchdog takes the fault back even while the runner lives (a hung runner)."""
        record: dict[str, Any] = {"type": "intent", "run": run_id, "fault": fault,
                                  "key": handle.key, "handle": handle.to_json()}
        if deadline is not None:
            record["deadline"] = round(deadline, 3)
        self._append(record)

    def record_injected(self, run_id: str, fault: str, handle: Handle) -> None:
        self._append({"type": "injected", "run": run_id, "fault": fault, "key": handle.key,
                      "handle": handle.to_json()})

    def record_done(self, run_id: str, key: str, how: str = "reverted") -> None:
        self._append({"type": "done", "run": run_id, "key": key, "how": how})

    def record_watchdog(self, run_id: str, summary: str, reverted: list[str],
                        failed: list[str]) -> None:
        """What the watchdog did when it found the run's runner lost."""
        self._append({"type": "watchdog", "run": run_id, "summary": summary,
                      "reverted": reverted, "failed": failed})

    def open_faults(self, run_id: str | None = None) -> list[OpenFault]:
        """Faults not yet taken back, in the order they were injected (of one run only,
        when `run_id` is given)."""
        pending: dict[str, OpenFault] = {}
        for record in self.records(run_id):
            key = str(record.get("key"))
            kind = record.get("type")
            if kind == "done":
                pending.pop(key, None)
            elif kind == "intent" or (kind == "injected" and key in pending):
                try:
                    earlier = pending.get(key)
                    pending[key] = OpenFault(
                        str(record["run"]), str(record["fault"]),
                        Handle.from_json(record["handle"]), kind == "injected",
                        since=earlier.since if earlier else _epoch(record.get("at")),
                        deadline=earlier.deadline if earlier else _number(
                            record.get("deadline")))
                except (KeyError, TypeError, AttributeError, ValueError):
                    # A record that is JSON but not ours (hand-edited, another version):
                    # keep what an earlier record of the same key knew.
                    continue
        return list(pending.values())

    def records(self, run_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The ledger's records (of one run only, when `run_id` is given: the lines of
        other runs are not even parsed, as the watchdog reads the ledger every second);
        StateError when the ledger or its directory could have been written by someone
        else (its records are not vouched for: not one is returned)."""
        self.check_trusted()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read ledger {self.path}: {_why(exc)}") from None
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            problem = _untrusted(os.fstat(fd), self.path, regular=True)
            if problem is not None:
                raise StateError(f"ledger {problem}; its records are not run: fix its "
                                 "owner and mode (chmod 600) after checking what it names")
            try:
                lines = handle.readlines()
            except OSError as exc:
                raise StateError(f"cannot read ledger {self.path}: {exc.strerror}") from None
        needle = None if run_id is None else json.dumps(run_id)  # as _append wrote it
        for line in lines:
            if needle is not None and needle not in line:
                continue
            with contextlib.suppress(json.JSONDecodeError):
                # A torn last line (power loss mid-write) is skipped, not fatal.
                record = json.loads(line)
                if run_id is None or (isinstance(record, dict) and record.get("run") == run_id):
                    yield record

    def _append(self, record: dict[str, Any]) -> None:
        record = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **record}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        self.ensure()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                         0o600)
        except OSError as exc:
            raise StateError(f"cannot write ledger {self.path}: {_why(exc)}") from None
        try:
            _own_file(fd, self.path)
            _lock_for_append(fd)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A torn last line (crash mid-write): end it, or this record would be
                # glued to it and lost to `recover` with it.
                line = b"\n" + line
            rest = memoryview(line)
            while rest:
                rest = rest[os.write(fd, rest):]
            os.fsync(fd)
        except OSError as exc:  # disk full, I/O error: callers handle StateError only
            raise StateError(f"cannot write ledger {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)

    # --- live runners and halt ------------------------------------------------------------

    def register_runner(self, run_id: str, experiment: str) -> Path:
        """Mark this process as the live runner of `run_id` until `unregister_runner`.

        The marker is alive while its runner holds an exclusive flock on it: the kernel
        drops the lock when the process dies, however it dies, and unlike a pid it cannot
        be taken over by another process (a new PID 1 in the next container, a reused pid
        on the host). The pid, start time and boot id in it are for people only."""
        self.ensure()
        marker = self._marker(run_id)
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StateError(f"cannot register the runner in {marker}: {_why(exc)}") from None
        try:
            _own_file(fd, marker)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps({"pid": os.getpid(), "experiment": experiment,
                                     "started": datetime.now(UTC).isoformat(),
                                     "boot_id": _boot_id()}).encode())
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot register the runner in {marker}: {exc.strerror}") from None
        except StateError:
            os.close(fd)
            raise
        self._held[run_id] = fd
        return marker

    def unregister_runner(self, run_id: str) -> None:
        """Never raises: a marker that cannot be removed (a state dir gone read-only) is
        harmless once its lock is released, which closing it does."""
        with contextlib.suppress(OSError):
            self._marker(run_id).unlink()
        fd = self._held.pop(run_id, None)
        if fd is not None:
            os.close(fd)

    def live_runs(self) -> set[str]:
        """Run ids whose runner process is still alive: its marker is locked."""
        live: set[str] = set()
        for marker in (self.state_dir / "active").glob("*.json"):
            if marker.stem in self._held or _locked(marker):
                live.add(marker.stem)
        return live

    def forget_dead_runner(self, run_id: str) -> None:
        """Remove the marker of a run whose runner is dead (its lock is free)."""
        marker = self._marker(run_id)
        try:
            fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            marker.unlink()
        except OSError:
            return  # alive after all (locked), or already gone
        finally:
            os.close(fd)

    def _marker(self, run_id: str) -> Path:
        return self.state_dir / "active" / f"{run_id}.json"

    def halt(self, reason: str) -> Path:
        """Write the halt file (0600; never through a symlink planted in its place)."""
        self.ensure()
        path = self.state_dir / HALT_FILE
        data = json.dumps({"reason": reason, "at": datetime.now(UTC).isoformat()}).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StateError(f"cannot write the halt file {path}: {_why(exc)}") from None
        try:
            _own_file(fd, path)
            os.ftruncate(fd, 0)
            os.write(fd, data)
        except OSError as exc:
            raise StateError(f"cannot write the halt file {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return path

    def halt_reason(self) -> str | None:
        """The halt reason while the halt file is there (it stays until `halt --clear`).

        `chaosrunner halt` writes JSON with a reason; a plain `touch .chaosrunner/HALT`
        (the big red button from a shell or a CI job) halts too."""
        path = self.state_dir / HALT_FILE
        try:
            os.lstat(path)
        except OSError:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # a symlink (or a FIFO...) put there: the button was pressed anyway
            return "halt file present (not a regular file; not read)"
        try:
            with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4096) if stat.S_ISREG(os.fstat(fd).st_mode) else ""
        except OSError:
            return "halt file present"
        try:
            data = json.loads(text)
        except ValueError:
            return text.strip()[:200] or "halt file present"
        reason = data.get("reason") if isinstance(data, dict) else None
        return str(reason or "halt file present")

    def clear_halt(self) -> None:
        """Remove the halt file (`chaosrunner halt --clear`): runs may start again."""
        path = self.state_dir / HALT_FILE
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StateError(f"cannot remove the halt file {path}: {_why(exc)}") from None


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _locked(marker: Path) -> bool:
    """True when a process holds the marker's lock (its runner lives)."""
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone: unregistered in the meantime
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # cannot tell: leave its faults to it (recover --force overrides)
    finally:
        os.close(fd)  # also drops the shared lock taken
    return False


def _untrusted(info: os.stat_result, path: Path, regular: bool = False) -> str | None:
    """What makes a state file or directory untrustworthy, or None."""
    if regular and not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if not regular and not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return f"{path} is writable by group or others (mode {info.st_mode & 0o777:o})"
    return None


def _own_file(fd: int, path: Path) -> None:
    """A state file just opened for writing: ours, regular, and 0600 whatever the umask."""
    problem = _untrusted(os.fstat(fd), path, regular=True)
    if problem is not None:  # once others could write it, nothing in it is vouched for
        raise StateError(f"{problem}; refusing to use it: check what it holds, then fix "
                         "its owner and mode (chmod 600)")
    os.fchmod(fd, 0o600)


def _lock_for_append(fd: int) -> None:
    """The ledger's exclusive lock, waited for at most APPEND_LOCK_WAIT; past that the
    record is written without it: an O_APPEND write lands after every byte already there,
    and a line torn by a frozen writer is ended first, then skipped by readers."""
    deadline = time.monotonic() + APPEND_LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symlink; state files are never followed through symlinks"
    return exc.strerror or str(exc)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None

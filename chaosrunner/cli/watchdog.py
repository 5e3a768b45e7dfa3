"""The watchdog process: it outlives its runner and takes the run's faults back when the
runner dies before finishing its rollback (`chaosrunner.engine.watchdog` starts it).

It runs in its own session (outside the runner's process group and terminal), ignores
SIGINT and SIGHUP, and has no terminal stdio; its log is `<state_dir>/watchdog/<run>.log`.
It learns of the runner's death at once from two sources: end-of-file on the heartbeat
pipe, and a pidfd on the runner. A heartbeat missing for HEARTBEAT_TIMEOUT (a runner
frozen by SIGSTOP or hung) counts as a death too.

When the runner is lost, every open fault of the run (the ledger's) is taken back with the
same rules as `chaosrunner recover`, marked done `how: watchdog` in the ledger, and the run
is kept in the history; then the watchdog exits. While the runner lives, a fault still open
past its ledger deadline (planned end plus a margin) is taken back too (`how: deadline`).
When the runner says its rollback is done, the watchdog exits quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaosrunner.cli.recover import KILLED_EXIT, take_back
from chaosrunner.drivers.base import DriverContext, DriverRegistry, get_driver
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.watchdog import DONE, READY
from chaosrunner.errors import Verdict
from chaosrunner.history import record_lost_run
from chaosrunner.secrets import redact

HEARTBEAT_TIMEOUT = 10.0  # seconds without a beat: the runner is hung or frozen
TICK = 0.2
DEADLINE_CHECK = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    args = _parser().parse_args(argv)
    ledger = Ledger(args.state_dir)
    pidfd = _pidfd(args.runner_pid)
    with contextlib.suppress(OSError):
        os.write(args.ready_fd, READY)
    os.close(args.ready_fd)
    _log(f"watching run {args.run_id} (runner pid {args.runner_pid})")
    ready = ready_drivers(args.drivers, args.run_id)
    reason = watch(args.pipe_fd, pidfd, ledger, args.run_id, ready)
    if reason is None:
        _log("the runner finished its rollback; exiting")
        return 0
    # Lost by its heartbeat, a runner may still be alive (frozen): its marker stays.
    return take_back_run(ledger, args, reason, dead=not reason.startswith(NO_HEARTBEAT),
                         drivers=ready)


NO_HEARTBEAT = "no heartbeat"


def ready_drivers(names: str, run_id: str) -> DriverRegistry:
    """The run's drivers, made ready in a background thread (client imported, backend
    reached once) while the watchdog watches: a revert then costs only its own calls.
    Until one is ready, the registry builds it afresh when asked."""
    registry = DriverRegistry()

    def prepare() -> None:
        for name in filter(None, names.split(",")):
            with contextlib.suppress(Exception):
                driver = get_driver(name, DriverContext(run_id=run_id, allow_exec=True))
                driver.health()
                registry.instances[name] = driver

    threading.Thread(target=prepare, name="ready-drivers", daemon=True).start()
    return registry


def watch(pipe_fd: int, pidfd: int | None, ledger: Ledger, run_id: str,
          drivers: DriverRegistry | None = None) -> str | None:
    """Watch until the runner says its rollback is done (None) or is lost (why)."""
    os.set_blocking(pipe_fd, False)
    last_beat = next_deadline_check = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(pipe_fd, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        while True:
            ready = {key.fd for key, _ in selector.select(TICK)}
            if ready:
                data = _drain(pipe_fd)
                if data and DONE in data:
                    return None
                if pidfd in ready:
                    return "the runner died before finishing its rollback"
                if data == b"":
                    return "the runner exited before finishing its rollback"
                if data:
                    last_beat = time.monotonic()
            now = time.monotonic()
            if now - last_beat > HEARTBEAT_TIMEOUT:
                return f"{NO_HEARTBEAT} from the runner for {now - last_beat:.0f}s"
            if now >= next_deadline_check:
                enforce_deadlines(ledger, run_id, drivers)
                next_deadline_check = now + DEADLINE_CHECK


def enforce_deadlines(ledger: Ledger, run_id: str,
                      drivers: DriverRegistry | None = None) -> None:
    """Take back this run's faults still open past their deadline (a hung runner)."""
    now = time.time()
    for item in reversed(ledger.open_faults(run_id)):
        if item.deadline is not None and item.deadline < now:
            error = take_back(ledger, item, how="deadline", drivers=drivers)
            _log(f"{item.handle.key}: past its deadline; "
                 f"{'reverted' if error is None else 'revert FAILED: ' + error}")


def take_back_run(ledger: Ledger, args: argparse.Namespace, reason: str, dead: bool,
                  drivers: DriverRegistry | None = None) -> int:
    """Revert the run's open faults, newest first; record it in the ledger and history."""
    _log(f"{reason}: taking back its faults")
    reverted: list[str] = []
    failed: list[str] = []
    for item in reversed(ledger.open_faults(args.run_id)):
        error = take_back(ledger, item, how="watchdog", drivers=drivers)
        (failed if error else reverted).append(item.handle.key)
        _log(f"{item.handle.key}: {'reverted' if error is None else 'revert FAILED: ' + error}")
    summary = (f"{reason}; the watchdog took back {len(reverted)} fault(s)"
               + (f", {len(failed)} could not be taken back: run `chaosrunner recover`"
                  if failed else ""))
    with contextlib.suppress(Exception):
        ledger.record_watchdog(args.run_id, summary, reverted, failed)
    if dead:
        ledger.forget_dead_runner(args.run_id)  # only when its lock is free
    with contextlib.suppress(Exception):
        record_lost_run(Path(args.state_dir), args.run_id, args.experiment, args.started_at,
                        Verdict.ROLLBACK_INCOMPLETE if failed else Verdict.INTERRUPTED,
                        Verdict.ROLLBACK_INCOMPLETE.exit_code if failed else KILLED_EXIT,
                        summary)
    _log(summary)
    return 5 if failed else 0


def _drain(fd: int) -> bytes | None:
    """What the pipe holds: bytes, b"" at end-of-file, None when nothing is there yet."""
    chunks = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return chunks or None
        if not chunk:
            return chunks
        chunks += chunk


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # an old kernel; or already dead: the pipe tells
        return None


def _log(message: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    with contextlib.suppress(OSError, ValueError):
        print(f"{stamp} {redact(message)}", file=sys.stderr, flush=True)  # its log file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaosrunner-watchdog")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--started-at", required=True)
    parser.add_argument("--runner-pid", type=int, required=True)
    parser.add_argument("--pipe-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--drivers", default="", help="the run's driver names, comma-separated")
    return parser


if __name__ == "__main__":
    sys.exit(main())

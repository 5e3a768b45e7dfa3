"""SIGINT and SIGTERM, from the moment a run starts until the process exits.

The contract (DESIGN.md 4): once a run has started, SIGINT ends the process with exit
status 130 and SIGTERM with 143 -- never with death by the signal, which a CI wrapper reads
as a crash -- and the rollback is never skipped. One process-wide `SIGNALS` guard keeps it:

- `arm()` (called as a run starts) installs one Python-level handler for both signals and
  it stays installed until the process exits. There is no moment at which the default
  handlers come back (asyncio's `add_signal_handler` is not used: removing it, or closing
  its loop, puts them back, and a signal in that instant killed the process).
- While the engine runs (`forwarding`), a signal is handed to the run (abort, roll back;
  the run refuses to skip the rollback on a second one) through the event loop.
- At any other time (loading, writing reports, between the experiments of a game day,
  after `main()` returned) a signal is noted; the next run started in this process is
  interrupted at once, and the process still ends with the signal's status.
- At exit, `hold()` tells the handler to note a signal only (not to print into the
  streams being flushed); the caller writes out what is left, and `exit_status(code)` is
  asked last, right before `os._exit` (the interpreter's shutdown, which restores the
  default handlers, never runs with a signal still to come): the first signal received
  decides the status, else the command's own code -- except exit 5 (a fault could not be
  taken back: run `chaosrunner recover`), which no signal hides.

The main thread takes SIGINT and SIGTERM until `exit_status` masks them: that is the
moment of the decision. Until then the kernel hands a signal sent to the process to the
main thread (it prefers it while it runs, or has no signal pending), whose C-level handler
runs before it goes on, so nothing is in flight when it decides. (Masking earlier, for the
final flush, handed signals to other threads: one that another thread had dequeued and not
yet tripped when the main thread decided was lost.) A signal sent to one
thread in particular is noted when that thread's handler trips; one pending and taken by
no thread counts too.

On Linux a signal sent to the process goes to its main thread unless that thread blocks
it, so the handler runs promptly even while the event loop waits in `select`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from chaosrunner.errors import SIGNAL_EXIT_CODES, Verdict

# "Something is still broken: run `chaosrunner recover`" says more than "interrupted".
ROLLBACK_INCOMPLETE = Verdict.ROLLBACK_INCOMPLETE.exit_code
_HANDLED = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    def __init__(self) -> None:
        self.received: list[str] = []  # every signal since arm(), in order
        self.pending: str | None = None  # noted while no run listened, not yet delivered
        self._forward: Callable[[str], object] | None = None
        self._previous: dict[int, Any] | None = None
        self._exiting = False  # the last output is being written: note, do not print

    @property
    def armed(self) -> bool:
        return self._previous is not None

    def arm(self) -> None:
        """Install the handler (again, if someone replaced it); idempotent."""
        if self._previous is None:
            self._previous = {n: signal.getsignal(n) for n in _HANDLED}
        for number in _HANDLED:
            if signal.getsignal(number) != self._handle:
                signal.signal(number, self._handle)

    def disarm(self) -> None:
        """Give back the handlers found at the first arm() (tests running in one process)."""
        if self._previous is not None:
            for number, handler in self._previous.items():
                signal.signal(number, handler)
        self.__init__()  # type: ignore[misc]

    @contextlib.contextmanager
    def forwarding(self, deliver: Callable[[str], object]) -> Iterator[None]:
        """While the engine runs: each signal goes to `deliver(name)`; one noted before
        (e.g. while the file was loading) is delivered at once."""
        self.arm()
        self._forward = deliver
        try:
            if self.pending is not None:
                name, self.pending = self.pending, None
                deliver(name)
            yield
        finally:
            self._forward = None

    def take_pending(self) -> str | None:
        """A signal noted while no run listened (a game day stops on it)."""
        name, self.pending = self.pending, None
        return name

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        self.received.append(name)
        if self._forward is not None:
            self._forward(name)
            return
        self.pending = self.pending or name
        if not self._exiting:
            print(f"chaosrunner: {name} received: no fault of this run is in place; "
                  "finishing what is being written, then exit "
                  f"{SIGNAL_EXIT_CODES[self.received[0]]}", file=sys.stderr)

    def hold(self) -> None:
        """The last output is being written: from now on a signal is only noted, for
        `exit_status`."""
        self._exiting = True

    def exit_status(self, code: int) -> int:
        """The process's exit status, asked last before `os._exit`: the first signal's
        status (handled, or pending), else `code`. Signals are masked from here on: one
        that comes later cannot change the status."""
        if not self.armed:
            return code
        self.hold()
        # Returning from this call runs the Python handlers of the signals delivered to
        # this thread until now (their C handlers ran at once).
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        return self._decide(code, signal.sigpending())

    def _decide(self, code: int, waiting: set[signal.Signals]) -> int:
        first = self.received[0] if self.received else next(
            (s.name for s in (signal.SIGTERM, signal.SIGINT) if s in waiting), None)
        if first is None or code == ROLLBACK_INCOMPLETE:
            return code
        return SIGNAL_EXIT_CODES[first]


SIGNALS = SignalGuard()

"""stdout and stderr whose reader may go away: `chaosrunner runs | head`.

Python ignores SIGPIPE, so a write to a pipe nobody reads any more raises BrokenPipeError,
which would end the command with a traceback and exit 1 -- and for `run`, after the
rollback, replace the verdict's exit code. Behind `QuietPipe` the rest of the output goes
to /dev/null instead and the command ends with its own exit status, as `git log | head`
does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO, cast


class QuietPipe:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # what was buffered now goes to /dev/null

    def _discard(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def quiet_standard_streams() -> None:
    """Put sys.stdout and sys.stderr behind QuietPipe (idempotent)."""
    if not isinstance(sys.stdout, QuietPipe):
        sys.stdout = cast(TextIO, QuietPipe(sys.stdout))
    if not isinstance(sys.stderr, QuietPipe):
        sys.stderr = cast(TextIO, QuietPipe(sys.stderr))


def flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()

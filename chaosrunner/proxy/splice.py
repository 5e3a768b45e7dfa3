"""Zero-copy relaying for links with no toxic: `os.splice` through a pipe, in the kernel.

Once a direction of a link has relayed `BULK` bytes on the fast path, and while neither
direction has a toxic (and no HTTP session), both asyncio transports
are paused and each direction moves bytes socket -> pipe -> socket with splice(2), driven
by readiness callbacks on duplicates of the sockets' descriptors (asyncio refuses its own
transports' descriptors to `add_reader`). No byte passes through Python. When a toxic is
added the link leaves splice mode at once: what sits in a pipe is read out and written
through the transport first, then the transports take over again, so no byte is lost or
reordered. An EOF is passed on as the transport path would (a half-close), after the pipe
is empty.

Only on Linux with `os.splice` (Python 3.10+) and asyncio's selector loop (uvloop's
callbacks work differently); elsewhere links stay on the transport path.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import Callable

PIPE_SIZE = 1024 * 1024
BULK = 4 * 1024 * 1024  # bytes a direction relays before its link is spliced
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)


def available(loop: asyncio.AbstractEventLoop) -> bool:
    return hasattr(os, "splice") and isinstance(loop, asyncio.SelectorEventLoop)


class Splicer:
    """One direction of a link in splice mode: `source` socket -> pipe -> `destination`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: int, destination: int,
                 counters: list[int], on_eof: Callable[[], None],
                 on_error: Callable[[OSError], None]) -> None:
        self.loop = loop
        fds: list[int] = []
        try:  # all four or none (EMFILE): the caller keeps the transports then
            fds.append(os.dup(source))
            fds.append(os.dup(destination))
            fds.extend(os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self.source, self.destination, self.pipe_r, self.pipe_w = fds
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.pipe_w, _F_SETPIPE_SZ, PIPE_SIZE)
        self.counters = counters  # [received, sent] of the proxy, for /metrics
        self.on_eof = on_eof
        self.on_error = on_error
        self.in_pipe = 0
        self.eof = False
        self.closed = False
        loop.add_reader(self.source, self._readable)

    def _readable(self) -> None:
        try:
            moved = os.splice(self.source, self.pipe_w, PIPE_SIZE, flags=SPLICE_FLAGS)
        except OSError as exc:
            if exc.errno not in _AGAIN:
                self.on_error(exc)
            return
        if moved == 0:
            self.eof = True
            self.loop.remove_reader(self.source)
        else:
            self.counters[0] += moved
            self.in_pipe += moved
        self._pump()

    def _pump(self) -> None:
        while self.in_pipe:
            try:
                moved = os.splice(self.pipe_r, self.destination, self.in_pipe,
                                  flags=SPLICE_FLAGS)
            except OSError as exc:
                if exc.errno in _AGAIN:
                    break
                self.on_error(exc)
                return
            self.in_pipe -= moved
            self.counters[1] += moved
        if self.in_pipe:  # the destination is full: wait for it, stop reading meanwhile
            if not self.eof:
                self.loop.remove_reader(self.source)
            self.loop.add_writer(self.destination, self._writable)
        elif self.eof and not self.closed:
            self.on_eof()

    def _writable(self) -> None:
        self.loop.remove_writer(self.destination)
        if not self.eof:
            self.loop.add_reader(self.source, self._readable)
        self._pump()

    def close(self) -> bytes:
        """Stop, and return the bytes still in the pipe (to be written by the transport)."""
        if self.closed:
            return b""
        self.closed = True
        self.loop.remove_reader(self.source)
        self.loop.remove_writer(self.destination)
        left = bytearray()
        while self.in_pipe > 0:
            try:
                part = os.read(self.pipe_r, self.in_pipe)
            except OSError:
                break
            if not part:
                break
            left += part
            self.in_pipe -= len(part)
        for fd in (self.source, self.destination, self.pipe_r, self.pipe_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        return bytes(left)

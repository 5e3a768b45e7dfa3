"""The data path: one `Link` per client connection, two `Direction`s per link.

Fast path. While a direction has no toxic and nothing queued, bytes go straight from the
source socket's read into the destination transport's `write`, inside the protocol
callback: one `recv_into` into a buffer shared by every connection of the loop, one
`send`, no task, no copy on the common path, no allocation per read. Back-pressure is the
transport's own: when the destination's write buffer passes its high-water mark, reading
from the source pauses until it drains.

Toxic path. Once a toxic applies, reads are copied into a queue and a worker task takes
each chunk through the direction's chain of stages (see `toxics`), then writes the
results in order, none before its `due` time. When the last toxic goes and the queue is
empty the worker ends and the direction is back on the fast path. The switch happens
only between chunks, on the one event-loop thread, so no byte is lost or reordered while
toxics are added and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from chaosrunner.proxy import splice
from chaosrunner.proxy.httpflow import HttpSession
from chaosrunner.proxy.toxics import Chunk, End, Stage, StageSlot, Toxic, make_stage

if TYPE_CHECKING:
    from chaosrunner.proxy.proxies import Proxy

READ_SIZE = 256 * 1024
WRITE_HIGH = 1024 * 1024  # destination buffer level at which the source is paused
QUEUE_HIGH = 1024 * 1024  # queued bytes (toxic path) at which the source is paused
QUEUE_LOW = 256 * 1024


# From 3.12 an asyncio transport keeps a *view* of unsent data instead of copying it:
# the shared read buffer must then be replaced whenever a write leaves data behind.
TRANSPORTS_KEEP_VIEWS = sys.version_info >= (3, 12)


def writes_later(loop: asyncio.AbstractEventLoop) -> bool:
    """uvloop queues a write and sends it later in the loop iteration, holding the object:
    what it is given must not be the shared read buffer."""
    return type(loop).__module__.startswith("uvloop")


class ReadBuffer:
    """The read buffer every connection of one event loop shares (reads are synchronous)."""

    def __init__(self, size: int = READ_SIZE, zero_copy: bool = True) -> None:
        self.size = size
        self.view = memoryview(bytearray(size))
        self.zero_copy = zero_copy  # links with no toxic relay with os.splice (see splice)

    def renew(self) -> None:
        self.view = memoryview(bytearray(self.size))


class Side(asyncio.BufferedProtocol):
    """One socket of a link: the client's or the upstream's."""

    def __init__(self, link: Link, buffer: ReadBuffer) -> None:
        self.link = link
        self.buffer = buffer
        self.transport: asyncio.Transport | None = None
        self.outgoing: Direction | None = None  # reads from this socket feed this
        self.incoming: Direction | None = None  # this writes to this socket
        self.pause_reasons: set[str] = set()

    # --- asyncio protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        if self.pause_reasons:
            transport.pause_reading()
        self.link.side_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.outgoing is not None:
            self.outgoing.on_data(self.buffer.view[:nbytes])

    def eof_received(self) -> bool:
        if self.outgoing is not None:
            self.outgoing.on_eof()
        return True  # keep the socket half-open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.side_lost(self)

    def pause_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.on_destination_full()

    def resume_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.on_destination_drained()

    # --- reading control; several reasons may hold reading paused at once ---

    def pause(self, reason: str) -> None:
        if not self.pause_reasons and self.transport is not None:
            self.transport.pause_reading()
        self.pause_reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self.pause_reasons:
            return
        self.pause_reasons.discard(reason)
        if not self.pause_reasons and self.transport is not None \
                and not self.transport.is_closing():
            self.transport.resume_reading()


class Direction:
    """Bytes from `source` to `destination`, through the stream's toxics."""

    def __init__(self, link: Link, stream: str, source: Side, destination: Side,
                 counters: list[int]) -> None:
        self.link = link
        self.stream = stream
        self.source = source
        self.destination = destination
        self.counters = counters  # [received, sent] of the proxy, for /metrics
        self.slots: list[StageSlot] = []
        self.front: Stage | None = None  # the HTTP stage, before the TCP toxics' stages
        self.stages: list[Stage] = []  # front and slots: what each chunk goes through
        self.moved = False  # bytes went this way already
        self.relayed = 0  # bytes relayed on the fast path: a bulk stream is spliced
        self.early: list[bytes] = []  # read before the destination was connected
        self.ready: deque[Chunk] = deque()  # through the stages inline, for the worker
        self.queue: deque[Chunk] = deque()
        self.queued = 0
        self.worker: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        self.full = False
        self.ended = False  # an end marker was written: nothing more goes this way
        self.eof_sent = False

    # --- input, from the source protocol ---

    def on_data(self, view: memoryview) -> None:
        if not self.link.ready:
            # uvloop may deliver a read of the client before its pause takes effect, and
            # the upstream may speak before its toxics are in place: held until then.
            self.early.append(bytes(view))
            return
        size = len(view)
        self.counters[0] += size
        self.moved = True
        if self.ended:
            return
        if self.worker is None:
            self._write(bytes(view) if self.link.writes_later else view)
            if TRANSPORTS_KEEP_VIEWS and self._destination().get_write_buffer_size():
                self.source.buffer.renew()
            self.relayed += size
            if self.relayed >= splice.BULK and self.link.zero_copy:
                self.link.maybe_splice()
            return
        now = self.link.loop.time()
        if self._idle_worker(now):
            self._inline(Chunk(bytes(view), now), now)
            return
        self.queue.append(Chunk(bytes(view), now))
        self.queued += size
        if self.queued > QUEUE_HIGH:
            self.source.pause("queue")
        self._wake()

    def on_eof(self) -> None:
        if not self.link.ready:
            self.early.append(b"")  # an EOF before the link was ready
            return
        if self.ended:
            return
        if self.worker is None:
            self._end(End.EOF)
            return
        self.queue.append(Chunk(b"", self.link.loop.time(), End.EOF))
        self._wake()

    # --- back-pressure, from the destination protocol ---

    def on_destination_full(self) -> None:
        self.full = True
        if self.worker is None:
            self.source.pause("destination")

    def on_destination_drained(self) -> None:
        self.full = False
        self.source.resume("destination")
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        if self.worker is None:
            self.link.maybe_splice()

    # --- toxics ---

    def sync(self, chain: Sequence[Toxic]) -> None:
        """Apply the stream's current toxic chain to this connection (add, update, remove)."""
        now = self.link.loop.time()
        old = list(self.slots)
        slots: list[StageSlot] = []
        for toxic in chain:
            slot = next((s for s in old if s.toxic is toxic), None)
            if slot is not None:
                old.remove(slot)
                if slot.revision != toxic.revision:
                    slot = make_stage(toxic, now, slot.stage)
            else:
                slot = make_stage(toxic, now)
            slots.append(slot)
        self.slots = slots
        self._restage()
        for gone in old:
            end = gone.stage.on_removed() if gone.active else None
            if end is not None:
                self.link.finish(end)
                return
        self._start_worker()

    def set_front(self, stage: Stage | None) -> None:
        """Put the HTTP stage in front of the chain (or take it away)."""
        self.front = stage
        self._restage()
        self._start_worker()

    def _start_worker(self) -> None:
        if (self.slots or self.front is not None) and self.worker is None and not self.ended:
            self.source.resume("destination")  # the worker watches the destination itself
            self.worker = self.link.loop.create_task(self._run())
        self._wake()

    def _restage(self) -> None:
        """Once per toxic change, not per chunk (a new list: a walk in progress keeps its own)."""
        stages = [slot.stage for slot in self.slots]
        self.stages = stages if self.front is None else [self.front, *stages]

    # --- the toxic path ---

    def _idle_worker(self, now: float) -> bool:
        """The worker waits with nothing queued: a chunk can go through the stages now."""
        if self.waiter is None or self.waiter.done() or self.queue or self.ready or self.full:
            return False
        deadline = self._deadline()
        return deadline is None or deadline > now

    def _inline(self, chunk: Chunk, now: float) -> None:
        """Take a chunk through the stages in the read callback, and write what is due now
        (most of what an HTTP toxic passes on): a worker wake-up saved per read."""
        items = self._through([chunk], 0, now)
        if all(item.end is None and item.due <= now for item in items):
            for item in items:
                self._write(item.data)
            if self._deadline() is not None:
                self._wake()  # a stage set a timer (reset_peer, timeout): the worker keeps it
            return
        self.ready.extend(items)  # delayed, or an end: the worker writes them in order
        self._wake()

    async def _run(self) -> None:
        loop = self.link.loop
        try:
            while not self.ended:
                now = loop.time()
                index = self._expired(now)
                if self.ready:
                    items = list(self.ready)
                    self.ready.clear()
                    await self._emit(items)
                elif index is not None:
                    stage = self.stages[index]
                    await self._emit(self._through(stage.expire(now), index + 1, now))
                elif self.queue:
                    chunk = self.queue.popleft()
                    self.queued -= len(chunk.data)
                    if self.queued < QUEUE_LOW:
                        self.source.resume("queue")
                    await self._emit(self._through([chunk], 0, now))
                elif not self.stages:
                    break  # nothing left to do: back to the fast path
                else:
                    await self._idle(self._deadline())
        finally:
            self.worker = None
            if self.full and not self.ended:
                self.source.pause("destination")
            self.link.loop.call_soon(self.link.maybe_splice)

    def _through(self, items: list[Chunk], start: int, now: float) -> list[Chunk]:
        for stage in self.stages[start:] if start else self.stages:
            if not items:
                break
            out: list[Chunk] = []
            for item in items:
                out.extend(stage.feed(item, now))
            items = out
        self.link.http_settled()
        return items

    async def _emit(self, items: list[Chunk]) -> None:
        loop = self.link.loop
        for item in items:
            delay = item.due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.ended:
                return
            if item.end is not None:
                self._end(item.end)
                return
            while self.full:
                self.writable = loop.create_future()
                await self.writable
            if self.ended:
                return
            self._write(item.data)

    def _expired(self, now: float) -> int | None:
        for index, stage in enumerate(self.stages):
            when = stage.deadline()
            if when is not None and when <= now:
                return index
        return None

    def _deadline(self) -> float | None:
        times = [t for t in (stage.deadline() for stage in self.stages) if t is not None]
        return min(times) if times else None

    async def _idle(self, until: float | None) -> None:
        loop = self.link.loop
        self.waiter = loop.create_future()
        timer = loop.call_at(until, _settle, self.waiter) if until is not None else None
        try:
            await self.waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def wake(self) -> None:
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # --- output ---

    def _destination(self) -> asyncio.Transport:
        transport = self.destination.transport
        assert transport is not None
        return transport

    def write_through(self, data: bytes) -> None:
        """Bytes that left splice mode in a pipe: written by the transport (already counted
        as received)."""
        self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        transport = self._destination()
        if transport.is_closing():
            return
        transport.write(data)
        self.counters[1] += len(data)

    def _end(self, end: End) -> None:
        self.ended = True
        if end is End.EOF:
            transport = self._destination()
            if not transport.is_closing() and transport.can_write_eof():
                transport.write_eof()
            self.eof_sent = True
            self.link.direction_done()
        else:
            self.link.finish(end)

    def stop(self) -> None:
        self.ended = True
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        worker = self.worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, loop: asyncio.AbstractEventLoop, buffer: ReadBuffer,
                 on_close: Callable[[Link], None]) -> None:
        self.proxy = proxy
        self.loop = loop
        self.writes_later = writes_later(loop)
        self.on_close = on_close
        self.client = Side(self, buffer)
        self.upstream = Side(self, buffer)
        self.client.pause("connecting")
        up_counters, down_counters = proxy.counters["upstream"], proxy.counters["downstream"]
        self.up = Direction(self, "upstream", self.client, self.upstream, up_counters)
        self.down = Direction(self, "downstream", self.upstream, self.client, down_counters)
        self.client.outgoing, self.client.incoming = self.up, self.down
        self.upstream.outgoing, self.upstream.incoming = self.down, self.up
        self.closed = False
        self.ready = False  # connected both ways, toxics in place
        self.connector: asyncio.Task[None] | None = None
        self.http: HttpSession | None = None
        self.zero_copy = buffer.zero_copy and splice.available(loop)
        self.splicers: tuple[splice.Splicer, splice.Splicer] | None = None

    def side_connected(self, side: Side) -> None:
        if side is self.client:
            self.connector = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream_address()
        try:
            await self.loop.create_connection(lambda: self.upstream, host, port)
        except OSError:
            # As Toxiproxy: an unreachable upstream closes the client connection.
            self.finish(End.CLOSE)
            return
        finally:
            self.connector = None
        if self.closed:
            self._close_transports()
            return
        self.up.sync(self.proxy.chain("upstream"))
        self.down.sync(self.proxy.chain("downstream"))
        self.apply_http()
        self.ready = True
        for direction in (self.up, self.down):
            early, direction.early = direction.early, []
            for data in early:
                if data:
                    direction.on_data(memoryview(data))
                else:
                    direction.on_eof()
        self.client.resume("connecting")

    # --- zero copy (see splice) ---

    def maybe_splice(self) -> None:
        """Relay a bulk stream with os.splice while nothing needs its bytes in Python.

        Only once a direction has relayed `splice.BULK` bytes: a spliced link holds ten
        descriptors instead of two, which only a bulk transfer pays back."""
        if not self._can_splice():
            return
        client, upstream = _fileno(self.client), _fileno(self.upstream)
        try:
            up = splice.Splicer(self.loop, client, upstream, self.up.counters,
                                self.up.on_eof, self._splice_failed)
        except OSError:  # out of descriptors, say: the transports carry on
            self.zero_copy = False
            return
        try:
            down = splice.Splicer(self.loop, upstream, client, self.down.counters,
                                  self.down.on_eof, self._splice_failed)
        except OSError:
            up.close()
            self.zero_copy = False
            return
        self.client.pause("splice")
        self.upstream.pause("splice")
        self.splicers = (up, down)

    def _can_splice(self) -> bool:
        if not self.zero_copy or self.splicers is not None or self.closed or not self.ready \
                or self.http is not None \
                or max(self.up.relayed, self.down.relayed) < splice.BULK:
            return False
        for direction in (self.up, self.down):
            if direction.slots or direction.front is not None or direction.worker is not None \
                    or direction.queue or direction.ready or direction.early or direction.ended \
                    or direction.full:
                return False
        for side in (self.client, self.upstream):
            transport = side.transport
            if transport is None or transport.is_closing() or transport.get_write_buffer_size() \
                    or _fileno(side) < 0:
                return False
        return True

    def leave_splice(self) -> None:
        """Back to the transports: what is in the pipes is written first, in order."""
        splicers, self.splicers = self.splicers, None
        if splicers is None:
            return
        for direction, splicer in zip((self.up, self.down), splicers, strict=True):
            left = splicer.close()
            if left and not direction.ended:
                direction.write_through(left)
            if splicer.eof:
                direction.on_eof()
        self.client.resume("splice")
        self.upstream.resume("splice")

    def _splice_failed(self, exc: OSError) -> None:
        self.finish(End.CLOSE)

    def direction_done(self) -> None:
        if self.up.eof_sent and self.down.eof_sent:
            self.finish(End.CLOSE)

    def side_lost(self, side: Side) -> None:
        self.finish(End.CLOSE)

    def finish(self, end: End) -> None:
        """Close both sockets (gracefully, or with a TCP RST) and forget the link."""
        if self.closed:
            return
        self.closed = True
        if self.splicers is not None:
            for splicer in self.splicers:
                splicer.close()
            self.splicers = None
        self.up.stop()
        self.down.stop()
        if self.connector is not None and self.connector is not asyncio.current_task():
            self.connector.cancel()
        if end is End.RESET:
            for side in (self.client, self.upstream):
                _set_linger_zero(side.transport)
                if side.transport is not None:
                    side.transport.abort()
        else:
            self._close_transports()
        self.on_close(self)

    def _close_transports(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def apply(self, stream: str, chain: Sequence[Toxic]) -> None:
        """A toxic of `stream` changed: bring this connection up to date."""
        if self.closed or self.upstream.transport is None:
            return  # still connecting: _connect syncs both directions when done
        if chain:
            self.leave_splice()
        (self.up if stream == "upstream" else self.down).sync(chain)
        self.apply_http()

    # --- HTTP toxics ---

    def apply_http(self) -> None:
        """Attach an HTTP session when the proxy has HTTP toxics; drop it when idle without."""
        if self.closed or self.upstream.transport is None:
            return
        if self.proxy.http_rules and self.http is None:
            self.leave_splice()
            resync = self.up.moved or self.down.moved
            session = HttpSession(self.proxy.name, lambda: self.proxy.http_rules,
                                  self.down.wake, resync)
            self.http = session
            self.up.set_front(session.request)
            self.down.set_front(session.response)
        self.http_settled()

    def http_settled(self) -> None:
        """Called after each step of the toxic path: detach a session no toxic needs."""
        session = self.http
        if session is None or self.proxy.http_rules or not session.idle():
            return
        self.http = None
        self.up.set_front(None)
        self.down.set_front(None)


def _fileno(side: Side) -> int:
    transport = side.transport
    sock: Any = transport.get_extra_info("socket") if transport is not None else None
    return int(sock.fileno()) if sock is not None else -1


def _set_linger_zero(transport: asyncio.Transport | None) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    if transport is None:
        return
    sock: Any = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

"""HTTP toxics on one link: requests are matched as they go up, responses framed as they come down.

A link of a proxy that has HTTP toxics gets an `HttpSession`: a `RequestStage` in front of
the upstream direction's chain and a `ResponseStage` in front of the downstream one. Both
frame messages with h11 (the HTTP/1.1 state machine httpx itself uses, so chunked bodies,
trailers, HEAD, 1xx, 204/304 and read-until-close bodies are framed as a real client and
server would), but never re-encode them: the bytes that go on are the bytes that came in.

* A request is held until its head is complete, then judged once against the toxics, in
  their order: every matching `http_latency` that wins its coin adds its delay to the
  response; the first matching `http_error` or `http_reset` that wins its coin decides the
  request's fate. Passing requests go on untouched; an `http_error` request (head and body)
  is swallowed and its answer queued; an `http_reset` resets the connection at once.
* Responses are matched to requests in order (HTTP/1.1 pipelining). Each upstream response
  goes out once its turn comes, delayed by its request's latency; an injected answer goes
  out as soon as every response before it has. So keep-alive and pipelining keep working.
* A stream that does not look like HTTP/1.x (or that h11 cannot frame) is given up on: the
  session logs a warning once and the link passes every byte through untouched from then
  on, held bytes included. Upgrades (CONNECT, `Upgrade:`) pass through the same way, quietly.

A session attached to a connection that already carried bytes (a pooled keep-alive
connection when the toxic is added) waits for a client read that starts with a request line
before it frames anything: it resynchronises at a request boundary instead of misreading
the middle of a body.
"""

from __future__ import annotations

import logging
import random
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

import h11

from chaosrunner.proxy.toxics import Chunk, End, HttpRule, Stage, Toxic

log = logging.getLogger("chaosrunner.proxy")

Rules = Callable[[], Sequence[tuple[Toxic, HttpRule]]]

_REQUEST_LINE = re.compile(rb"[A-Z]{1,20} \S+ HTTP/1\.[01]\r\n")
_METHOD_START = re.compile(rb"[A-Z]{1,20}( |$)")
MAX_HEAD = 64 * 1024


@dataclass
class Verdict:
    """What happens to one request: forwarded (with a response delay), answered, or reset."""

    forward: bool
    delay: float = 0.0
    answer: bytes | None = None
    close_after: bool = False
    reset: bool = False


@dataclass
class Expected:
    """One response the client is owed, in order: the upstream's, or one the proxy makes."""

    method: bytes
    delay: float
    answer: bytes | None = None  # injected by the proxy
    close_after: bool = False
    since: float = 0.0


class HttpSession:
    """The HTTP state of one link; see the module docstring."""

    def __init__(self, proxy_name: str, rules: Rules, wake_down: Callable[[], None],
                 resync: bool) -> None:
        self.proxy_name = proxy_name
        self.rules = rules
        self.wake_down = wake_down
        self.passthrough = False
        self.expected: deque[Expected] = deque()
        self.request = RequestStage(self, hunting=resync)
        self.response = ResponseStage(self)

    def give_up(self, why: str, quiet: bool = False) -> None:
        if not self.passthrough and not quiet:
            log.warning("proxy %s: a connection is not HTTP/1.1 (%s); HTTP toxics do not "
                        "apply to it and its bytes pass through untouched",
                        self.proxy_name, why)
        self.passthrough = True
        self.expected.clear()
        self.wake_down()

    def idle(self) -> bool:
        """At a message boundary both ways, nothing owed: the session can be dropped."""
        return self.passthrough or (not self.expected and self.request.at_boundary()
                                    and self.response.at_boundary())

    def judge(self, event: h11.Request, now: float) -> Verdict:
        method = event.method.decode("latin-1")
        target = event.target.decode("latin-1")
        headers: dict[str, list[str]] = {}
        for name, value in event.headers:
            headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        verdict = Verdict(forward=True)
        for toxic, rule in self.rules():
            if not rule.matches(method, target, headers) or random.random() >= toxic.toxicity:
                continue
            if rule.kind == "http_latency":
                verdict.delay += _delay(rule)
            elif rule.kind == "http_reset":
                return Verdict(forward=False, reset=True)
            elif verdict.forward:
                verdict.forward = False
                verdict.close_after = _wants_close(event, headers)
                verdict.answer = _answer(rule, toxic.name, event.method == b"HEAD",
                                         verdict.close_after)
        return verdict


def _delay(rule: HttpRule) -> float:
    latency, jitter = int(rule.attrs["latency"]), int(rule.attrs["jitter"])
    if jitter > 0:
        latency += random.randrange(-jitter, jitter)
    return max(0, latency) / 1000.0


def _wants_close(event: h11.Request, headers: dict[str, list[str]]) -> bool:
    tokens = ",".join(headers.get("connection", [])).lower()
    if event.http_version == b"1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


def _answer(rule: HttpRule, toxic: str, head_only: bool, close: bool) -> bytes:
    status = int(rule.attrs["status"])
    body = str(rule.attrs["body"]).encode()
    extra: dict[str, str] = dict(rule.attrs["response_headers"])
    names = {name.lower() for name in extra}
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    if "content-type" not in names:
        lines.append("Content-Type: text/plain; charset=utf-8")
    lines.extend(f"{name}: {value}" for name, value in extra.items()
                 if name.lower() not in ("content-length", "transfer-encoding", "connection"))
    lines.append(f"Content-Length: {len(body)}")
    lines.append(f"X-Chaosrunner-Toxic: {toxic}")
    lines.append("Connection: close" if close else "Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected Fault"


class RequestStage(Stage):
    """Client to upstream: frames requests, judges each, forwards or swallows its bytes."""

    kind = "http_request"

    def __init__(self, session: HttpSession, hunting: bool) -> None:
        super().__init__({})
        self.session = session
        self.hunting = hunting
        self.raw = bytearray()  # bytes of the current message not yet passed on or dropped
        self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.verdict: Verdict | None = None  # None: the head is not complete yet

    def at_boundary(self) -> bool:
        return not self.raw and self.verdict is None

    def feed(self, chunk: Chunk, now: float) -> list[Chunk]:
        if chunk.end is not None:
            return [*self._flush(chunk.due), chunk]
        if self.session.passthrough:
            return [*self._flush(chunk.due), chunk]
        if self.hunting:
            if not _REQUEST_LINE.match(chunk.data):
                return [chunk]
            self.hunting = False
        self.raw += chunk.data
        self.parser.receive_data(chunk.data)
        if self.verdict is None and not _plausible_request(self.raw):
            self.session.give_up("the client did not send an HTTP/1.x request line")
            return self._flush(chunk.due)
        try:
            return self._frame(chunk.due, now)
        except h11.RemoteProtocolError as exc:
            self.session.give_up(f"request: {exc}")
            return self._flush(chunk.due)

    def _frame(self, due: float, now: float) -> list[Chunk]:
        out: list[Chunk] = []
        while True:
            event = self.parser.next_event()
            if event is h11.NEED_DATA:
                if self.verdict is not None:
                    pending = len(self.parser.trailing_data[0])
                    self._dispose(len(self.raw) - pending, due, out)
                return out
            if isinstance(event, h11.Request):
                verdict = self.verdict = self.session.judge(event, now)
                if verdict.reset:
                    self.raw.clear()
                    return [Chunk(b"", due, End.RESET)]
                self.session.expected.append(Expected(event.method, verdict.delay,
                                                      verdict.answer, verdict.close_after, now))
                if verdict.answer is not None:
                    self.session.wake_down()
                if verdict.forward and _is_upgrade(event):
                    self.session.give_up("upgrade", quiet=True)
                    return out + self._flush(due)
            elif isinstance(event, h11.EndOfMessage):
                self._dispose(len(self.raw) - len(self.parser.trailing_data[0]), due, out)
                self._next_message()
            elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return out

    def _dispose(self, size: int, due: float, out: list[Chunk]) -> None:
        if size <= 0:
            return
        part = bytes(self.raw[:size])
        del self.raw[:size]
        if self.verdict is not None and self.verdict.forward:
            out.append(Chunk(part, due))

    def _next_message(self) -> None:
        self.verdict = None
        self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if self.raw:
            self.parser.receive_data(bytes(self.raw))

    def _flush(self, due: float) -> list[Chunk]:
        """Held bytes go on as they are (giving up, or the client ended mid-message)."""
        if not self.raw:
            return []
        keep = self.verdict is None or self.verdict.forward
        data, self.raw = bytes(self.raw), bytearray()
        return [Chunk(data, due)] if keep else []


def _plausible_request(raw: bytearray) -> bool:
    """Cheap early check, so a binary protocol is not held while h11 waits for a blank line."""
    if not _METHOD_START.match(raw[:21]):
        return False
    line_end = raw.find(b"\r\n")
    return line_end < 0 or _REQUEST_LINE.match(raw[:line_end + 2]) is not None


def _is_upgrade(event: h11.Request) -> bool:
    return event.method == b"CONNECT" or any(name == b"upgrade" for name, _ in event.headers)


class ResponseStage(Stage):
    """Upstream to client: frames responses, delays them, slots injected answers in order."""

    kind = "http_response"

    def __init__(self, session: HttpSession) -> None:
        super().__init__({})
        self.session = session
        self.raw = bytearray()
        self.parser: h11.Connection | None = None  # the response being read, if any

    def at_boundary(self) -> bool:
        return self.parser is None and not self.raw

    def feed(self, chunk: Chunk, now: float) -> list[Chunk]:
        if self.session.passthrough:
            return [*self._flush(chunk.due), chunk]
        if chunk.end is not None:
            return self._end(chunk, now)
        out = self._answers(now)
        self.raw += chunk.data
        try:
            self._frame(chunk.due, now, out, chunk.data)
        except h11.RemoteProtocolError as exc:
            self.session.give_up(f"response: {exc}")
            out.extend(self._flush(chunk.due))
        return out

    def _frame(self, due: float, now: float, out: list[Chunk], data: bytes) -> None:
        if self.parser is None:
            self._start()
        else:
            self.parser.receive_data(data)
        self._events(due, now, out)

    def _start(self) -> None:
        """A new response begins with the held bytes; it must be one the client is owed."""
        expected = self.session.expected
        if not expected or expected[0].answer is not None:
            raise h11.RemoteProtocolError("the upstream sent bytes nobody asked for")
        if not self.raw.startswith(b"HTTP/1."[:len(self.raw)]):
            raise h11.RemoteProtocolError("the upstream did not answer with HTTP/1.x")
        self.parser = _response_parser(expected[0].method)
        self.parser.receive_data(bytes(self.raw))

    def _events(self, due: float, now: float, out: list[Chunk]) -> None:
        while self.parser is not None:
            event = self.parser.next_event()
            if event is h11.NEED_DATA:
                self._emit(len(self.raw) - len(self.parser.trailing_data[0]), due, out)
                return
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._emit(len(self.raw) - len(self.parser.trailing_data[0]), due, out)
                self.session.expected.popleft()
                self.parser = None
                out.extend(self._answers(now))
                if self.raw:
                    self._start()
            elif event is h11.PAUSED:
                return

    def _emit(self, size: int, due: float, out: list[Chunk]) -> None:
        if size <= 0:
            return
        part = bytes(self.raw[:size])
        del self.raw[:size]
        out.append(Chunk(part, due + self.session.expected[0].delay))

    def _answers(self, now: float) -> list[Chunk]:
        """Injected answers whose turn has come (no upstream response before them)."""
        out: list[Chunk] = []
        expected = self.session.expected
        while self.parser is None and expected and expected[0].answer is not None:
            item = expected.popleft()
            assert item.answer is not None
            out.append(Chunk(item.answer, now + item.delay))
            if item.close_after:
                out.append(Chunk(b"", now + item.delay, End.CLOSE))
                self.finished = True
                break
        return out

    def deadline(self) -> float | None:
        expected = self.session.expected
        if self.parser is None and expected and expected[0].answer is not None \
                and not self.finished:
            return expected[0].since
        return None

    def expire(self, now: float) -> list[Chunk]:
        return self._answers(now)

    def _end(self, chunk: Chunk, now: float) -> list[Chunk]:
        out: list[Chunk] = []
        if self.parser is not None:
            try:
                self.parser.receive_data(b"")
                self._events(chunk.due, now, out)
            except h11.RemoteProtocolError:
                pass
        out.extend(self._flush(chunk.due))
        out.extend(self._answers(now))
        out.append(chunk)
        return out

    def _flush(self, due: float) -> list[Chunk]:
        if not self.raw:
            return []
        data, self.raw = bytes(self.raw), bytearray()
        self.parser = None
        return [Chunk(data, due)]


def _response_parser(method: bytes) -> h11.Connection:
    """An h11 client that has 'sent' a `method` request, so it frames the response right."""
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    parser.send(h11.Request(method=method, target="/", headers=[("Host", "proxy")]))
    parser.send(h11.EndOfMessage())
    return parser

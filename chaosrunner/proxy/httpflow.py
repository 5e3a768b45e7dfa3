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
* Speed: most messages have the plain shape (a complete head, no Transfer-Encoding, one
  Content-Length or none on a request, a final status that has a body). For those, the
  head is split here (`parse_request` / `parse_response`: first line, header lines) and
  the message length is known at once; everything else (chunked, trailers, HEAD, 1xx,
  204/304, read-until-close, Upgrade, Expect, anything unusual) is framed by h11.
  Measured here: h11 costs about 200 us per request/response pair, the split 16 us.
  A body chunk that arrives while nothing is held goes on as it came, uncopied.
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
from typing import Final

import h11

from chaosrunner.proxy.toxics import Chunk, End, HttpRule, Stage, Toxic

log = logging.getLogger("chaosrunner.proxy")

Rules = Callable[[], Sequence[tuple[Toxic, HttpRule]]]

_REQUEST_LINE = re.compile(rb"[A-Z]{1,20} \S+ HTTP/1\.[01]\r\n")
_METHOD_START = re.compile(rb"[A-Z]{1,20}( |$)")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
MAX_HEAD = 64 * 1024
NEED_MORE: Final = "need more"  # parse_*: the head is not complete yet


@dataclass
class Head:
    """The head of a plain message, split by `parse_request` / `parse_response`."""

    first: list[bytes]  # method, target, version | version, status, reason
    headers: dict[str, list[str]]
    length: int  # of the whole message, head and body


def parse_request(raw: bytearray) -> Head | str | None:
    """A plain request's head; NEED_MORE; or None: not the plain shape (h11 frames it)."""
    head = _split(raw)
    if not isinstance(head, Head):
        return head
    method, _target, version = head.first
    if version not in _VERSIONS or not _TOKEN.fullmatch(method) or method == b"CONNECT" \
            or "upgrade" in head.headers or "expect" in head.headers:
        return None
    body = _content_length(head.headers, default=0)
    if body is None:
        return None
    head.length += body
    return head


def parse_response(raw: bytearray, method: bytes) -> Head | str | None:
    """Same for the response to a `method` request: only final statuses with a body."""
    head = _split(raw)
    if not isinstance(head, Head):
        return head
    version, status, _reason = head.first
    if version not in _VERSIONS or not status.isdigit() or method == b"HEAD" \
            or int(status) < 200 or int(status) in (204, 304):
        return None
    body = _content_length(head.headers, default=None)
    if body is None:
        return None
    head.length += body
    return head


def _split(raw: bytearray) -> Head | str | None:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return NEED_MORE
    lines = bytes(raw[:end]).split(b"\r\n")
    first = lines[0].split(b" ", 2)
    if len(first) != 3:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return None  # obs-fold, a bad name, ...: h11 decides
        headers.setdefault(name.decode("latin-1").lower(), []).append(
            value.strip(b" \t").decode("latin-1"))
    return Head(first, headers, end + 4)


def _content_length(headers: dict[str, list[str]], default: int | None) -> int | None:
    if "transfer-encoding" in headers:
        return None
    values = headers.get("content-length")
    if values is None:
        return default
    if len(values) != 1 or not values[0].isdigit():
        return None
    return int(values[0])


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

    def judge(self, first: list[bytes], headers: dict[str, list[str]]) -> Verdict:
        """The fate of a request (method, target, version; lower-case header names)."""
        method = first[0].decode("latin-1")
        target = first[1].decode("latin-1")
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
                verdict.close_after = _wants_close(first[2], headers)
                verdict.answer = _answer(rule, toxic.name, first[0] == b"HEAD",
                                         verdict.close_after)
        return verdict


def _delay(rule: HttpRule) -> float:
    latency, jitter = int(rule.attrs["latency"]), int(rule.attrs["jitter"])
    if jitter > 0:
        latency += random.randrange(-jitter, jitter)
    return max(0, latency) / 1000.0


def _wants_close(version: bytes, headers: dict[str, list[str]]) -> bool:
    tokens = ",".join(headers.get("connection", [])).lower()
    if version == b"HTTP/1.0":
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


def _h11_head(event: h11.Request) -> tuple[list[bytes], dict[str, list[str]]]:
    headers: dict[str, list[str]] = {}
    for name, value in event.headers:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return [event.method, event.target, b"HTTP/" + event.http_version], headers


class _Framer(Stage):
    """What both stages share: the held bytes of the current message and how it is framed.

    A quick-framed message (`Head.length` known) counts down `remaining`; a body chunk that
    arrives while nothing is held goes on as it came, uncopied. h11 frames everything else."""

    def __init__(self, session: HttpSession) -> None:
        super().__init__({})
        self.session = session
        self.raw = bytearray()  # bytes of the current message not yet passed on or dropped
        self.remaining = 0  # bytes of a quick-framed message still to pass on or drop
        self.parser: h11.Connection | None = None  # h11 framing the current message

    def _take_in(self, data: bytes, due: float, now: float, out: list[Chunk]) -> None:
        if self.remaining and not self.raw and self.parser is None:
            size = min(self.remaining, len(data))
            self._pass(data if size == len(data) else data[:size], due, out)
            self._count_down(size, now, out)
            data = data[size:]
            if not data:
                return
        self.raw += data
        if self.parser is not None:
            self.parser.receive_data(data)
        self._frame(due, now, out)

    def _frame(self, due: float, now: float, out: list[Chunk]) -> None:
        while self.raw:
            if self.parser is not None:
                if not self._frame_h11(due, now, out):
                    return
            elif self.remaining:
                size = min(self.remaining, len(self.raw))
                self._dispose(size, due, out)
                self._count_down(size, now, out)
            elif not self._begin(due, now, out):
                return

    def _count_down(self, size: int, now: float, out: list[Chunk]) -> None:
        self.remaining -= size
        if not self.remaining:
            self._message_done(now, out)

    def _dispose(self, size: int, due: float, out: list[Chunk]) -> None:
        """The first `size` held bytes leave the stage (passed on, or dropped)."""
        if size <= 0:
            return
        if size == len(self.raw):
            part = bytes(self.raw)
            self.raw.clear()
        else:
            part = bytes(self.raw[:size])
            del self.raw[:size]
        self._pass(part, due, out)

    def _flush(self, due: float) -> list[Chunk]:
        """Held bytes go on as they are (giving up, or the stream ended mid-message)."""
        self.parser, self.remaining = None, 0
        if not self.raw:
            return []
        data, self.raw = bytes(self.raw), bytearray()
        return [Chunk(data, due)] if self._keeps_held() else []

    def _begin(self, due: float, now: float, out: list[Chunk]) -> bool:
        """A new message starts at raw[0]; False while it cannot be framed yet."""
        raise NotImplementedError

    def _frame_h11(self, due: float, now: float, out: list[Chunk]) -> bool:
        """Run h11 over the current message; True when it ended (raw holds what follows)."""
        parser = self.parser
        assert parser is not None
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                if self._head_taken():
                    self._dispose(len(self.raw) - len(parser.trailing_data[0]), due, out)
                return False
            if isinstance(event, self._ENDS):
                self._dispose(len(self.raw) - len(parser.trailing_data[0]), due, out)
                self.parser = None
                self._message_done(now, out)
                return True
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return False
            if isinstance(event, h11.Request) and not self._h11_head(event, due, now, out):
                return False

    # The h11 events that end the current message.
    _ENDS: tuple[type[h11.Event], ...] = (h11.EndOfMessage,)

    def _head_taken(self) -> bool:
        """Whether the current message's head is dealt with: until then nothing held goes."""
        return True

    def _h11_head(self, event: h11.Request, due: float, now: float, out: list[Chunk]) -> bool:
        """A request's head, framed by h11; False stops framing."""
        raise NotImplementedError

    def _pass(self, part: bytes, due: float, out: list[Chunk]) -> None:
        raise NotImplementedError

    def _message_done(self, now: float, out: list[Chunk]) -> None:
        raise NotImplementedError

    def _keeps_held(self) -> bool:
        return True


class RequestStage(_Framer):
    """Client to upstream: frames requests, judges each, forwards or swallows its bytes."""

    kind = "http_request"

    def __init__(self, session: HttpSession, hunting: bool) -> None:
        super().__init__(session)
        self.hunting = hunting
        self.verdict: Verdict | None = None  # None: the head is not complete yet

    def at_boundary(self) -> bool:
        return not self.raw and self.verdict is None

    def feed(self, chunk: Chunk, now: float) -> list[Chunk]:
        if chunk.end is not None or self.session.passthrough:
            return [*self._flush(chunk.due), chunk]
        if self.hunting:
            if not _REQUEST_LINE.match(chunk.data):
                return [chunk]
            self.hunting = False
        out: list[Chunk] = []
        try:
            self._take_in(chunk.data, chunk.due, now, out)
        except h11.RemoteProtocolError as exc:
            self.session.give_up(f"request: {exc}")
            out.extend(self._flush(chunk.due))  # after the requests framed before it
        return out

    def _begin(self, due: float, now: float, out: list[Chunk]) -> bool:
        if not _plausible_request(self.raw):
            raise h11.RemoteProtocolError("the client did not send an HTTP/1.x request line")
        head = parse_request(self.raw)
        if head is NEED_MORE:
            if len(self.raw) > MAX_HEAD:
                raise h11.RemoteProtocolError("request head larger than 64 KiB")
            return False
        if not isinstance(head, Head):
            self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            self.parser.receive_data(bytes(self.raw))
            return True
        if not self._judged(head.first, head.headers, due, now, out):
            return False
        self.remaining = head.length
        return True

    def _judged(self, first: list[bytes], headers: dict[str, list[str]], due: float,
                now: float, out: list[Chunk]) -> bool:
        """Judge a complete head; False when the connection is being reset."""
        verdict = self.verdict = self.session.judge(first, headers)
        if verdict.reset:
            self.raw.clear()
            self.remaining, self.parser = 0, None
            out.clear()
            out.append(Chunk(b"", due, End.RESET))
            return False
        self.session.expected.append(Expected(first[0], verdict.delay, verdict.answer,
                                              verdict.close_after, now))
        if verdict.answer is not None:
            self.session.wake_down()
        return True

    def _head_taken(self) -> bool:
        return self.verdict is not None

    def _h11_head(self, event: h11.Request, due: float, now: float, out: list[Chunk]) -> bool:
        first, headers = _h11_head(event)
        if not self._judged(first, headers, due, now, out):
            return False
        if self.verdict is not None and self.verdict.forward and _is_upgrade(event):
            self.session.give_up("upgrade", quiet=True)
            out.extend(self._flush(due))
            return False
        return True

    def _pass(self, part: bytes, due: float, out: list[Chunk]) -> None:
        if self.verdict is not None and self.verdict.forward:
            out.append(Chunk(part, due))

    def _message_done(self, now: float, out: list[Chunk]) -> None:
        self.verdict = None

    def _keeps_held(self) -> bool:
        return self.verdict is None or self.verdict.forward


def _plausible_request(raw: bytearray) -> bool:
    """Cheap early check, so a binary protocol is not held while waiting for a blank line."""
    if not _METHOD_START.match(raw[:21]):
        return False
    line_end = raw.find(b"\r\n")
    return line_end < 0 or _REQUEST_LINE.match(raw[:line_end + 2]) is not None


def _is_upgrade(event: h11.Request) -> bool:
    return event.method == b"CONNECT" or any(name == b"upgrade" for name, _ in event.headers)


class ResponseStage(_Framer):
    """Upstream to client: frames responses, delays them, slots injected answers in order."""

    kind = "http_response"

    def at_boundary(self) -> bool:
        return self._between() and not self.raw

    def _between(self) -> bool:
        return self.parser is None and not self.remaining

    def feed(self, chunk: Chunk, now: float) -> list[Chunk]:
        if self.session.passthrough:
            return [*self._flush(chunk.due), chunk]
        if chunk.end is not None:
            return self._end(chunk, now)
        out = self._answers(now)
        try:
            self._take_in(chunk.data, chunk.due, now, out)
        except h11.RemoteProtocolError as exc:
            self.session.give_up(f"response: {exc}")
            out.extend(self._flush(chunk.due))
        return out

    def _begin(self, due: float, now: float, out: list[Chunk]) -> bool:
        """A new response starts at raw[0]: it must be one the client is owed."""
        expected = self.session.expected
        if not expected or expected[0].answer is not None:
            raise h11.RemoteProtocolError("the upstream sent bytes nobody asked for")
        if not self.raw.startswith(b"HTTP/1."[:len(self.raw)]):
            raise h11.RemoteProtocolError("the upstream did not answer with HTTP/1.x")
        head = parse_response(self.raw, expected[0].method)
        if head is NEED_MORE:
            if len(self.raw) > MAX_HEAD:
                raise h11.RemoteProtocolError("response head larger than 64 KiB")
            return False
        if isinstance(head, Head):
            self.remaining = head.length
        else:
            self.parser = _response_parser(expected[0].method)
            self.parser.receive_data(bytes(self.raw))
        return True

    # The upstream closing ends a read-until-close response.
    _ENDS = (h11.EndOfMessage, h11.ConnectionClosed)

    def _pass(self, part: bytes, due: float, out: list[Chunk]) -> None:
        out.append(Chunk(part, due + self.session.expected[0].delay))

    def _message_done(self, now: float, out: list[Chunk]) -> None:
        self.session.expected.popleft()
        out.extend(self._answers(now))

    def _answers(self, now: float) -> list[Chunk]:
        """Injected answers whose turn has come (no upstream response before them)."""
        out: list[Chunk] = []
        expected = self.session.expected
        while self._between() and expected and expected[0].answer is not None:
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
        if self._between() and expected and expected[0].answer is not None \
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
                self._frame_h11(chunk.due, now, out)
            except h11.RemoteProtocolError:
                pass
        out.extend(self._flush(chunk.due))
        out.extend(self._answers(now))
        out.append(chunk)
        return out


def _response_parser(method: bytes) -> h11.Connection:
    """An h11 client that has 'sent' a `method` request, so it frames the response right."""
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    parser.send(h11.Request(method=method, target="/", headers=[("Host", "proxy")]))
    parser.send(h11.EndOfMessage())
    return parser

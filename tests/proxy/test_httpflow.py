"""The quick head split decides only plain messages and hands everything else to h11."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from httphelp import raw_upstream
from proxyhelp import connect, make_proxy, port_of, recv_all

from chaosrunner.proxy.httpflow import NEED_MORE, Head, parse_request, parse_response


def test_plain_request_is_split_here() -> None:
    raw = bytearray(b"POST /pay?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a:  2 \r\n"
                    b"Content-Length: 3\r\n\r\nabcGET")
    head = parse_request(raw)
    assert isinstance(head, Head)
    assert head.first == [b"POST", b"/pay?x=1", b"HTTP/1.1"]
    assert head.headers["x-a"] == ["1", "2"]
    assert head.length == len(raw) - 3  # head and the 3-byte body, not the next request
    assert parse_request(bytearray(b"GET / HTTP/1.1\r\nHost: a\r\n")) == NEED_MORE


@pytest.mark.parametrize("raw", [
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\n\r\n",
])
def test_anything_else_goes_to_h11(raw: bytes) -> None:
    assert parse_request(bytearray(raw)) is None


@pytest.mark.parametrize(("raw", "method"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b"GET"),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", b"GET"),
    (b"HTTP/1.1 100 Continue\r\n\r\n", b"POST"),
    (b"HTTP/1.0 200 OK\r\n\r\n", b"GET"),  # read until close
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"GET"),
])
def test_responses_h11_frames(raw: bytes, method: bytes) -> None:
    assert parse_response(bytearray(raw), method) is None


@pytest.fixture
def until_close() -> Iterator[str]:
    """An upstream answering each connection with an HTTP/1.0 body read until close."""

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * 100_000)

    with raw_upstream(answer) as address:
        yield address


def test_a_body_read_until_close_passes_whole(api: httpx.Client, until_close: str) -> None:
    proxy = make_proxy(api, "old", until_close)
    api.post("/proxies/old/toxics", json={"type": "http_latency",
                                          "attributes": {"latency": 1, "path": "^/"}})
    with connect(port_of(proxy)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = recv_all(sock)
    assert answer.endswith(b"\r\n\r\n" + b"z" * 100_000)


def test_a_request_before_garbage_still_goes_on() -> None:
    from chaosrunner.proxy.httpflow import HttpSession
    from chaosrunner.proxy.toxics import Chunk

    session = HttpSession("p", lambda: [], lambda: None, resync=False)
    data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01binary"
    out = session.request.feed(Chunk(data, 0.0), 0.0)
    assert b"".join(chunk.data for chunk in out) == data  # nothing lost, in order
    assert session.passthrough


def test_a_body_chunk_goes_on_uncopied_and_the_next_response_is_framed() -> None:
    from chaosrunner.proxy.httpflow import HttpSession
    from chaosrunner.proxy.toxics import Chunk

    session = HttpSession("p", lambda: [], lambda: None, resync=False)
    session.request.feed(Chunk(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                               b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 0.0), 0.0)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    assert [c.data for c in session.response.feed(Chunk(head + b"01", 0.0), 0.0)] \
        == [head + b"01"]
    middle = b"234567"
    [out] = session.response.feed(Chunk(middle, 0.0), 0.0)
    assert out.data is middle  # the data path copies no body chunk
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"
    out = session.response.feed(Chunk(b"89" + second, 0.0), 0.0)
    assert [c.data for c in out] == [b"89", second]
    assert not session.expected and session.idle()

"""HTTP toxics through the API, against a real stdlib HTTP/1.1 server and real clients."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import requests
from helpers import answers, free_port, wait_until
from httphelp import PlainServer, raw_upstream, read_responses
from proxyhelp import EchoServer, connect, make_proxy, port_of, recv_all, recv_exact

PAY = {"method": "^POST$", "path": "^/pay"}


@pytest.fixture(params=["asyncio", "asyncio-copy", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs with os.splice, without it, and on uvloop (`chaosrunner[fast]`)."""
    kind: str = request.param
    return kind


def add(api: httpx.Client, kind: str, toxicity: float = 1.0, name: str | None = None,
        **attributes: Any) -> dict[str, Any]:
    body = {"type": kind, "toxicity": toxicity, "attributes": attributes,
            "name": name or kind}
    response = api.post("/proxies/web/toxics", json=body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


# --- http_error ----------------------------------------------------------------------------


def test_http_error_with_requests_keeps_the_connection(api: httpx.Client, base: str,
                                                       web: PlainServer) -> None:
    add(api, "http_error", status=503, body="payments down",
        response_headers={"Retry-After": "1"}, **PAY)
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(base + "/hello").text == "hello /hello"
            answer = session.post(base + "/pay", json={"order_id": "a"})
            assert answer.status_code == 503
            assert answer.text == "payments down"
            assert answer.headers["Retry-After"] == "1"
            assert answer.headers["X-Chaosrunner-Toxic"] == "http_error"
    assert web.paths() == ["/hello"] * 3  # the erroring requests never reached it
    assert len(web.client_ports()) == 1  # one upstream connection: keep-alive held


def test_http_error_with_httpx_and_aiohttp(api: httpx.Client, base: str,
                                          web: PlainServer) -> None:
    add(api, "http_error", status=429, **PAY)
    with httpx.Client(base_url=base) as client:
        assert [client.post("/pay", content=b"x").status_code for _ in range(3)] == [429] * 3
        assert client.get("/other").status_code == 200

    async def run() -> list[int]:
        async with aiohttp.ClientSession(base) as session:
            codes = []
            for path in ("/pay", "/hello", "/pay"):
                async with session.post(path, data=b"body") as answer:
                    await answer.read()
                    codes.append(answer.status)
            return codes

    assert asyncio.run(run()) == [429, 200, 429]
    assert web.paths() == ["/other", "/hello"]


def test_http_error_matches_headers_and_query(api: httpx.Client, base: str) -> None:
    add(api, "http_error", status=500, path=r"\?tenant=a(&|$)",
        headers={"X-Canary": "^yes$"})
    with httpx.Client(base_url=base) as client:
        assert client.get("/q?tenant=a", headers={"X-Canary": "yes"}).status_code == 500
        assert client.get("/q?tenant=a", headers={"X-Canary": "no"}).status_code == 200
        assert client.get("/q?tenant=ab", headers={"X-Canary": "yes"}).status_code == 200
        assert client.get("/q?tenant=a").status_code == 200


def test_toxicity_is_per_request_not_per_connection(api: httpx.Client, base: str) -> None:
    add(api, "http_error", toxicity=0.5, status=503)
    with httpx.Client(base_url=base) as client:
        codes = [client.get("/hello").status_code for _ in range(200)]
    # One connection: per connection it would be all 503 or all 200.
    assert 40 <= codes.count(503) <= 160, codes.count(503)


def test_http_error_swallows_chunked_upload_and_keeps_framing(api: httpx.Client, base: str,
                                                             web: PlainServer) -> None:
    add(api, "http_error", status=503, path="^/pay/reject")

    def parts() -> Iterator[bytes]:
        yield from (b"a" * 1000, b"b" * 70_000, b"c")

    with httpx.Client(base_url=base) as client:
        assert client.post("/pay/reject", content=parts()).status_code == 503
        accepted = client.post("/pay/ok", content=parts())
        assert (accepted.status_code, accepted.text) == (200, "got 71001")
    assert web.paths() == ["/pay/ok"]


# --- pipelining ----------------------------------------------------------------------------


def test_pipelined_requests_get_their_answers_in_order(api: httpx.Client, base: str,
                                                      web: PlainServer) -> None:
    add(api, "http_error", status=503, body="no", **PAY)
    add(api, "http_latency", name="slow_a", latency=300, path="^/a$")
    port = int(base.rsplit(":", 1)[1])
    batch = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
             b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
             b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
             b"POST /pay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3\r\nabc\r\n0\r\n\r\n"
             b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(batch)
        answers = read_responses(sock, [b"GET", b"POST", b"HEAD", b"POST", b"GET"])
        elapsed = time.monotonic() - start
    assert answers == [(200, b"hello /a"), (503, b"no"), (200, b""), (503, b"no"),
                       (200, b"alpha-beta-gamma")]
    assert elapsed >= 0.3  # the answers after /a waited for it, in order
    assert web.paths() == ["/a", "/b", "/chunked"]


# --- http_latency --------------------------------------------------------------------------


def test_http_latency_delays_only_matching_responses(api: httpx.Client, base: str) -> None:
    add(api, "http_latency", latency=1500, method="^GET$", path="^/slow")
    with requests.Session() as session:
        start = time.monotonic()
        assert session.get(base + "/slow").status_code == 200
        slow = time.monotonic() - start
        start = time.monotonic()
        assert session.get(base + "/fast").status_code == 200
        assert session.post(base + "/slow", data=b"x").status_code == 200
        fast = time.monotonic() - start
    assert slow >= 1.5
    assert fast < 1.5  # two requests on the same connection, neither delayed
    with httpx.Client(base_url=base) as client:
        start = time.monotonic()
        assert client.get("/slow/x").status_code == 200
        assert time.monotonic() - start >= 1.5


def test_http_latency_on_a_chunked_download_with_aiohttp(api: httpx.Client, base: str) -> None:
    add(api, "http_latency", latency=400, path="^/chunked")

    async def run() -> tuple[bytes, float]:
        async with aiohttp.ClientSession(base) as session:
            start = time.monotonic()
            async with session.get("/chunked") as answer:
                body = await answer.read()
            return body, time.monotonic() - start

    body, elapsed = asyncio.run(run())
    assert body == b"alpha-beta-gamma"
    assert elapsed >= 0.4


# --- http_reset ----------------------------------------------------------------------------


def test_http_reset_resets_before_any_response_byte(api: httpx.Client, base: str,
                                                    web: PlainServer) -> None:
    add(api, "http_reset", path="^/pay")
    port = int(base.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        with pytest.raises(ConnectionResetError):
            data = sock.recv(1024)
            assert data == b""  # a FIN instead of a reset would fail here
            raise AssertionError("closed without a reset")
    with httpx.Client(base_url=base) as client:
        assert client.get("/hello").status_code == 200
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post("/pay", content=b"x")
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.post(base + "/pay", data=b"x")

    async def with_aiohttp() -> None:
        async with aiohttp.ClientSession(base) as session:
            async with session.get("/hello") as answer:
                assert answer.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with session.post("/pay", data=b"x") as answer:
                    await answer.read()

    asyncio.run(with_aiohttp())
    assert "/pay" not in web.paths()


# --- toxic changes on live keep-alive connections ------------------------------------------


def test_toxic_added_and_removed_on_a_pooled_connection(api: httpx.Client, base: str,
                                                       web: PlainServer) -> None:
    with httpx.Client(base_url=base) as client:
        assert client.post("/pay", content=b"x" * 100_000).status_code == 200
        add(api, "http_error", status=502, **PAY)
        assert client.post("/pay", content=b"x").status_code == 502
        assert api.delete("/proxies/web/toxics/http_error").status_code == 204
        assert client.post("/pay", content=b"y").text == "got 1"
    assert len(web.client_ports()) == 1


# --- streams that are not HTTP -------------------------------------------------------------


def test_a_stream_that_is_not_http_passes_untouched(api: httpx.Client, echo: EchoServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    proxy = make_proxy(api, "raw", echo.address)
    response = api.post("/proxies/raw/toxics", json={"type": "http_error",
                                                     "attributes": {"status": 500}})
    assert response.status_code == 200
    payload = bytes(range(256)) * 40
    with caplog.at_level(logging.WARNING, logger="chaosrunner.proxy"), \
            connect(port_of(proxy)) as sock:
        sock.sendall(payload)
        assert recv_exact(sock, len(payload)) == payload
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # too late: the link is pass-through now
        assert recv_exact(sock, 18) == b"GET / HTTP/1.1\r\n\r\n"
    assert any("not HTTP/1.1" in record.getMessage() for record in caplog.records)


def test_a_short_non_http_greeting_is_not_held_back(api: httpx.Client,
                                                    echo: EchoServer) -> None:
    proxy = make_proxy(api, "raw", echo.address)
    api.post("/proxies/raw/toxics", json={"type": "http_reset", "attributes": {}})
    with connect(port_of(proxy)) as sock:
        sock.sendall(b"PING\r\n")  # no HTTP version: given up on at once, not held
        assert recv_exact(sock, 6) == b"PING\r\n"


# --- a large download through a toxic that does not match ------------------------------------


# --- the API -------------------------------------------------------------------------------


def test_http_toxic_attributes_are_shown_and_checked(api: httpx.Client, base: str) -> None:
    created = add(api, "http_error", status=418, **PAY)
    assert created["attributes"] == {"status": 418, "body": "", "response_headers": {},
                                     "method": "^POST$", "path": "^/pay", "headers": {}}
    for attributes, words in (({"status": 200}, "400-599"),
                              ({"status": "x"}, "int64"),
                              ({"path": "("}, "not a valid regex"),
                              ({"headers": {"a": 1}}, "object of strings"),
                              ({"response_headers": {"bad name": "x"}}, "valid header"),
                              ({"response_headers": {"X-A\n": "x"}}, "valid header")):
        response = api.post("/proxies/web/toxics", json={"type": "http_error", "name": "bad",
                                                         "attributes": attributes})
        assert response.status_code == 400, attributes
        assert words in response.json()["error"]
    patched = api.patch("/proxies/web/toxics/http_error", json={"attributes": {"status": 504}})
    assert patched.json()["attributes"]["status"] == 504
    assert api.patch("/proxies/web/toxics/http_error",
                     json={"attributes": {"method": "["}}).status_code == 400


# --- the demo's payments service, a real process -------------------------------------------


@pytest.fixture
def payments() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "chaosrunner.demo.payments",
                                "--port", str(port), "--name", "payments-t"])
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def test_each_http_toxic_against_demo_payments(api: httpx.Client, payments: str) -> None:
    base = f"http://127.0.0.1:{port_of(make_proxy(api, 'web', payments))}"
    add(api, "http_error", toxicity=1.0, status=503, **PAY)
    add(api, "http_latency", latency=300, method="GET", path="^/payments")
    with requests.Session() as session, httpx.Client(base_url=base) as client:
        assert session.post(base + "/pay", json={"order_id": "o-1"}).status_code == 503
        assert client.post("/pay", json={"order_id": "o-2"}).status_code == 503
        start = time.monotonic()
        summary = client.get("/payments").json()
        assert time.monotonic() - start >= 0.3
        assert summary["confirmed"] == 0  # no payment reached the service
        assert api.delete("/proxies/web/toxics/http_error").status_code == 204
        add(api, "http_reset", path="^/pay\\?order_id=boom")
        assert client.post("/pay", json={"order_id": "o-3"}).status_code == 200
        with pytest.raises(requests.ConnectionError):
            session.get(base + "/pay?order_id=boom")
        assert session.get(base + "/pay?order_id=o-4").status_code == 200
        assert client.get("/payments").json()["confirmed"] == 2


# --- edges: HEAD, Connection: close, HTTP/1.0, Expect: 100-continue ------------------------


def test_error_answers_respect_head_close_and_http10(api: httpx.Client, base: str) -> None:
    add(api, "http_error", status=503, body="down", path="^/pay")
    port = int(base.rsplit(":", 1)[1])
    with connect(port) as sock:  # HEAD: the head only, and the connection stays
        sock.sendall(b"HEAD /pay HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, [b"HEAD", b"GET"]) == [(503, b""), (200, b"hello /hello")]
    for request in (b"GET /pay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /pay HTTP/1.0\r\n\r\n"):
        with connect(port) as sock:
            sock.sendall(request)
            answer = recv_all(sock)  # answered, then closed by the proxy
            assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"\r\n\r\ndown")
            assert b"Connection: close" in answer


def test_an_expect_continue_request_is_answered_without_its_body(api: httpx.Client,
                                                                 base: str,
                                                                 web: PlainServer) -> None:
    add(api, "http_error", status=413, method="^PUT$")
    port = int(base.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        [(status, _)] = read_responses(sock, [b"PUT"])  # no body sent, yet answered
        assert status == 413
    assert web.paths() == []


@pytest.fixture
def upgrading() -> Iterator[str]:
    """An upstream that switches protocols on any request, then echoes bytes."""

    def answer(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n" + head.split(b"\r\n\r\n", 1)[1])
        while data := conn.recv(4096):
            conn.sendall(data)

    with raw_upstream(answer) as address:
        yield address


def test_an_upgrade_passes_through_quietly(api: httpx.Client, upgrading: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    proxy = make_proxy(api, "ws", upgrading)
    api.post("/proxies/ws/toxics", json={"type": "http_error",
                                         "attributes": {"path": "^/never"}})
    with caplog.at_level(logging.WARNING, logger="chaosrunner.proxy"), \
            connect(port_of(proxy)) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        frame = b"\x81\x05hello" * 100
        sock.sendall(frame)
        assert recv_exact(sock, len(frame)) == frame
    assert not caplog.records

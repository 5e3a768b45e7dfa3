"""Conformance of the data path: bytes intact, each toxic's effect, toxics on open connections.

Timing assertions are lower bounds (a toxic makes things at least this slow) or wide
upper bounds against a much larger toxic value, so a loaded machine cannot make them flaky.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time

import httpx
import pytest
from proxyhelp import EchoServer, connect, make_proxy, port_of, recv_all, recv_exact

from chaosrunner.proxy.server import ProxyServerHandle


@pytest.fixture(params=["asyncio", "asyncio-copy", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs with os.splice, without it, and on uvloop (`chaosrunner[fast]`)."""
    kind: str = request.param
    return kind


@pytest.fixture
def slack(loop_kind: str) -> float:
    """How much earlier than asked a toxic's delay may end by the test's clock: none on
    asyncio; on uvloop up to about 1 ms, since libuv's timers run on a millisecond clock read
    once per loop iteration (within the 2 ms accuracy the latency toxic promises; one
    slow_close read 0.4994 s of 0.5 s)."""
    return 0.002 if loop_kind == "uvloop" else 0.0


def rtt(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.monotonic() - start


def toxic(api: httpx.Client, proxy: str, **body: object) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def port(api: httpx.Client, echo: EchoServer) -> int:
    return port_of(make_proxy(api, "p", echo.address))


def test_bulk_bytes_intact(port: int) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    with connect(port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = recv_exact(sock, len(payload))
        sender.join()
    assert received == payload


def test_half_close_passes_through(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"last words"  # echoed, then EOF from the upstream


def test_unreachable_upstream_closes_client(api: httpx.Client) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
    port = port_of(make_proxy(api, "dead", f"127.0.0.1:{dead}"))
    with connect(port) as sock, contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""


def test_latency_applies_to_open_connection_and_goes_away(api: httpx.Client, port: int,
                                                          slack: float) -> None:
    with connect(port) as sock:
        rtt(sock)
        toxic(api, "p", name="slow", type="latency", attributes={"latency": 1000})
        assert rtt(sock) >= 1.0 - slack
        assert api.delete("/proxies/p/toxics/slow").status_code == 204
        assert rtt(sock) < 1.0


def test_latency_stacks_and_upstream_counts(api: httpx.Client, port: int,
                   slack: float) -> None:
    toxic(api, "p", name="down", type="latency", attributes={"latency": 150})
    toxic(api, "p", name="down2", type="latency", attributes={"latency": 150})
    toxic(api, "p", name="up", type="latency", stream="upstream", attributes={"latency": 100})
    with connect(port) as sock:
        assert rtt(sock) >= 0.4 - slack


def test_latency_delays_a_stream_as_a_whole(api: httpx.Client, port: int,
                   slack: float) -> None:
    # Latency is per chunk from its arrival, so 20 pipelined messages take ~1 latency,
    # not 20 of them.
    toxic(api, "p", type="latency", attributes={"latency": 300})
    with connect(port) as sock:
        start = time.monotonic()
        for i in range(20):
            sock.sendall(b"%02d" % i)
            time.sleep(0.01)
        data = recv_exact(sock, 40)
        elapsed = time.monotonic() - start
    assert data == b"".join(b"%02d" % i for i in range(20))
    assert 0.3 - slack <= elapsed < 20 * 0.3


def test_bandwidth_limits_rate(api: httpx.Client, port: int,
                   slack: float) -> None:
    toxic(api, "p", type="bandwidth", attributes={"rate": 100})  # 100 KB/s
    payload = os.urandom(60_000)
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exact(sock, len(payload)) == payload
        assert time.monotonic() - start >= 0.5 - slack


def test_timeout_drops_data_then_closes(api: httpx.Client, port: int,
                   slack: float) -> None:
    toxic(api, "p", type="timeout", attributes={"timeout": 300})
    start = time.monotonic()  # before connecting: the timeout runs from the proxy's accept
    with connect(port) as sock:
        sock.sendall(b"into the void")
        assert recv_all(sock) == b""
        assert time.monotonic() - start >= 0.3 - slack


def test_timeout_zero_holds_until_deleted(api: httpx.Client, port: int) -> None:
    toxic(api, "p", name="hold", type="timeout", stream="upstream",
          attributes={"timeout": 0})
    with connect(port) as sock:
        sock.sendall(b"lost")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # no data, no close
        sock.settimeout(10)
        assert api.delete("/proxies/p/toxics/hold").status_code == 204
        assert recv_all(sock) == b""  # deleting a timeout toxic closes its connections


def test_reset_peer_sends_rst(api: httpx.Client, port: int,
                   slack: float) -> None:
    toxic(api, "p", type="reset_peer", stream="upstream", attributes={"timeout": 100})
    # The timeout runs from the proxy's accept, which can come before connect() returns
    # here: the clock starts before connecting (it once read 0.0997 s when started after).
    start = time.monotonic()
    with connect(port) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            while sock.recv(1024):
                pass
        assert time.monotonic() - start >= 0.1 - slack


def test_slow_close_delays_close(api: httpx.Client, port: int,
                   slack: float) -> None:
    toxic(api, "p", type="slow_close", attributes={"delay": 500})
    with connect(port) as sock:
        sock.sendall(b"bye")
        assert recv_exact(sock, 3) == b"bye"
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""
        assert time.monotonic() - start >= 0.5 - slack


def test_slicer_keeps_bytes_and_order(api: httpx.Client, port: int) -> None:
    toxic(api, "p", type="slicer", attributes={"average_size": 7, "size_variation": 3,
                                               "delay": 10})
    payload = os.urandom(20_000)
    with connect(port) as sock:
        sock.sendall(payload)
        assert recv_exact(sock, len(payload)) == payload


def test_limit_data_closes_after_bytes(api: httpx.Client, port: int) -> None:
    toxic(api, "p", type="limit_data", attributes={"bytes": 100})
    with connect(port) as sock:
        sock.sendall(b"a" * 300)
        assert recv_all(sock) == b"a" * 100


def test_toxicity_zero_never_applies(api: httpx.Client, port: int) -> None:
    toxic(api, "p", type="latency", toxicity=0.0, attributes={"latency": 2000})
    with connect(port) as sock:
        assert rtt(sock) < 2.0


def test_toxicity_is_a_coin_flip_per_connection(api: httpx.Client, port: int) -> None:
    toxic(api, "p", type="timeout", toxicity=0.5, attributes={"timeout": 0})
    socks = [connect(port) for _ in range(40)]
    try:
        for sock in socks:
            sock.sendall(b"?")
        time.sleep(0.5)
        answered = 0
        for sock in socks:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                answered += sock.recv(1) == b"?"
        # Each connection flips once: some get through, some are held (P(fail) ~ 1e-12).
        assert 0 < answered < 40
        for sock in socks:  # and the flip sticks for the connection's lifetime
            sock.setblocking(True)
            sock.settimeout(0.2)
            try:
                sock.sendall(b"!")
                sock.recv(1)
            except TimeoutError:
                pass
    finally:
        for sock in socks:
            sock.close()


def _stream_and_check(port: int, seed: int, errors: list[str], rounds: int) -> None:
    rng = random.Random(seed)
    try:
        with connect(port, timeout=30) as sock:
            for _ in range(rounds):
                payload = rng.randbytes(rng.randint(1, 50_000))
                sender = threading.Thread(target=sock.sendall, args=(payload,))
                sender.start()
                got = recv_exact(sock, len(payload))
                sender.join()
                if got != payload:
                    errors.append(f"seed {seed}: {len(got)} bytes back of {len(payload)}, "
                                  "or out of order")
                    return
    except OSError as exc:
        errors.append(f"seed {seed}: {exc!r}")


def test_no_byte_lost_or_reordered_under_toxic_churn(api: httpx.Client, port: int) -> None:
    errors: list[str] = []
    workers = [threading.Thread(target=_stream_and_check, args=(port, seed, errors, 40))
               for seed in range(8)]
    for worker in workers:
        worker.start()
    kinds = [("latency", {"latency": 5, "jitter": 5}), ("slicer", {"average_size": 500,
             "size_variation": 200, "delay": 50}), ("bandwidth", {"rate": 50_000}),
             ("latency", {"latency": 0})]
    rng = random.Random(1)
    deadline = time.monotonic() + 60
    changes = 0
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        kind, attrs = rng.choice(kinds)
        stream = rng.choice(["upstream", "downstream"])
        name = f"churn{rng.randint(0, 3)}"
        if api.get(f"/proxies/p/toxics/{name}").status_code == 200:
            if rng.random() < 0.3:
                api.patch(f"/proxies/p/toxics/{name}", json={"toxicity": rng.random()})
            else:
                api.delete(f"/proxies/p/toxics/{name}")
        else:
            api.post("/proxies/p/toxics", json={"name": name, "type": kind, "stream": stream,
                                                "attributes": attrs})
        changes += 1
        time.sleep(0.005)
    for worker in workers:
        worker.join(60)
    assert not errors, errors
    assert changes > 20  # the toxics really did churn while data flowed


def test_toxics_come_and_go_during_a_bulk_stream(api: httpx.Client, port: int,
                                                 server: ProxyServerHandle,
                                                 loop_kind: str) -> None:
    """A bulk stream is spliced (asyncio); toxics added and removed while it flows take
    the link back to the transports and out again, and not a byte is lost or reordered."""
    payload = os.urandom(48 * 1024 * 1024)
    links = server.running.api.collection.proxies["p"].links
    spliced = []
    with connect(port, timeout=60) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = bytearray()
        toggles = 0
        while len(received) < len(payload):
            part = sock.recv(1 << 20)
            assert part, "closed early"
            received += part
            spliced.extend(link.splicers is not None for link in list(links))
            if len(received) > (toggles + 1) * 6 * 1024 * 1024 and toggles < 6:
                toggles += 1
                if toggles % 2:
                    toxic(api, "p", name="t", type="noop", stream="upstream")
                else:
                    assert api.delete("/proxies/p/toxics/t").status_code == 204
        sender.join()
    assert bytes(received) == payload
    assert toggles == 6
    if loop_kind == "asyncio":
        assert any(spliced), "the bulk stream was never spliced"

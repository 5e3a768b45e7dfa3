"""Drop-in: the PyPI client `toxiproxy-python` drives the embedded server as it would Toxiproxy;
it and the Chaos Toolkit extension, unchanged, create each HTTP toxic (and an expiring one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import toxiproxy  # a dev dependency: missing, the test must fail, not skip
from helpers import wait_until
from httphelp import PlainServer
from proxyhelp import EchoServer, connect, recv_exact
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaosrunner.proxy.server import ProxyServerHandle


@pytest.fixture
def client(server: ProxyServerHandle) -> Iterator[toxiproxy.Toxiproxy]:
    parts = urlsplit(server.url)
    saved = APIConsumer.host, APIConsumer.port
    client = toxiproxy.Toxiproxy()
    client.update_api_consumer(parts.hostname, parts.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved


def test_client_lifecycle(client: toxiproxy.Toxiproxy, echo: EchoServer) -> None:
    assert client.running()
    assert b'"version"' in client.version()
    proxy = client.create(upstream=echo.address, name="payments")
    assert proxy.enabled is True
    port = int(proxy.listen.rsplit(":", 1)[1])
    assert port > 0
    assert set(client.proxies()) == {"payments"}
    with pytest.raises(ProxyExists):
        client.create(upstream=echo.address, name="payments")

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 300, "jitter": 0}
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(b"pay")
        assert recv_exact(sock, 3) == b"pay"
        assert time.monotonic() - start >= 0.3
    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no-such-toxic")

    with proxy.down():
        assert client.get_proxy("payments").enabled is False
    assert client.get_proxy("payments").enabled is True

    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert client.reset()
    restored = client.get_proxy("payments")
    assert restored.enabled is True and restored.toxics() == {}

    assert client.destroy(restored)
    assert client.proxies() == {}


def test_client_populate(client: toxiproxy.Toxiproxy, echo: EchoServer) -> None:
    created = client.populate([
        {"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
        {"name": "b", "upstream": echo.address, "listen": "127.0.0.1:0"},
    ])
    assert sorted(p.name for p in created) == ["a", "b"]
    client.destroy_all()
    assert client.proxies() == {}


def test_toxiproxy_python_creates_each_http_toxic(client: toxiproxy.Toxiproxy,
                                                  web: PlainServer) -> None:
    proxy = client.create(upstream=web.address, name="payments")
    base = f"http://{proxy.listen}"
    with httpx.Client(base_url=base) as http:
        proxy.add_toxic(type="http_error", attributes={"status": 503, "path": "^/pay"})
        assert http.post("/pay", content=b"x").status_code == 503
        proxy.destroy_toxic("http_error_downstream")

        proxy.add_toxic(type="http_latency", attributes={"latency": 300, "method": "GET"})
        start = time.monotonic()
        assert http.get("/hello").status_code == 200
        assert time.monotonic() - start >= 0.3
        proxy.destroy_toxic("http_latency_downstream")

        proxy.add_toxic(type="http_reset", stream="upstream",
                        attributes={"headers": {"X-Chaos": "reset"}})
        assert http.get("/hello").status_code == 200
        with pytest.raises(httpx.TransportError):
            http.get("/hello", headers={"X-Chaos": "reset"})
        toxics = proxy.toxics()
        assert list(toxics) == ["http_reset_upstream"]
        assert toxics["http_reset_upstream"].attributes["headers"] == {"X-Chaos": "reset"}

        expires_at = time.time() + 0.5
        proxy.add_toxic(type="http_error", name="expiring",
                        attributes={"status": 500, "expires_at": expires_at})
        # Created: listed until its expiry (a loaded machine may only look after it).
        assert "expiring" in proxy.toxics() or time.time() >= expires_at
        assert wait_until(lambda: "expiring" not in proxy.toxics(), timeout=30)


def test_the_chaos_toolkit_extension_creates_each_http_toxic(server: ProxyServerHandle,
                                                             web: PlainServer) -> None:
    from chaostoxi.toxic.actions import create_toxic, delete_toxic

    configuration = {"toxiproxy_url": server.url}
    created = httpx.post(f"{server.url}/proxies", json={
        "name": "payments", "listen": "127.0.0.1:0", "upstream": web.address}).json()
    base = f"http://{created['listen']}"
    with httpx.Client(base_url=base) as http:
        assert create_toxic("payments", "err", "http_error",
                            attributes={"status": 502, "path": "^/pay"},
                            configuration=configuration)
        assert http.post("/pay", content=b"x").status_code == 502
        assert create_toxic("payments", "slow", "http_latency", toxicity=1.0,
                            attributes={"latency": 300, "method": "^GET$"},
                            configuration=configuration)
        start = time.monotonic()
        assert http.get("/hello").status_code == 200
        assert time.monotonic() - start >= 0.3
        assert create_toxic("payments", "rst", "http_reset",
                            attributes={"path": "^/boom"}, configuration=configuration)
        with pytest.raises(httpx.TransportError):
            http.get("/boom")
        for name in ("err", "slow", "rst"):
            assert delete_toxic("payments", name, configuration=configuration)
    assert httpx.get(f"{server.url}/proxies/payments/toxics").json() == []

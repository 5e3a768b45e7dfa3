"""Drop-in: the PyPI client `toxiproxy-python` drives the embedded server as it would Toxiproxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import toxiproxy  # a dev dependency: missing, the test must fail, not skip
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

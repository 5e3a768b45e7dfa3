"""toxiproxy-python, unchanged, creates each HTTP toxic (and an expiring one) on our proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import toxiproxy
from httphelp import PlainServer
from toxiproxy.api import APIConsumer

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

        proxy.add_toxic(type="http_error", name="expiring",
                        attributes={"status": 500, "expires_at": time.time() + 0.5})
        deadline = time.monotonic() + 30
        while "expiring" in proxy.toxics():
            assert time.monotonic() < deadline
            time.sleep(0.05)


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

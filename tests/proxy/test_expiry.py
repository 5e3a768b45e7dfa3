"""Toxic expiry (`expires_at`, an extension): the proxy removes an expired toxic by itself."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from helpers import wait_until
from proxyhelp import EchoServer, connect, make_proxy, port_of, recv_exact

from chaosrunner.proxy.server import ProxyServerHandle


def _names(api: httpx.Client) -> list[str]:
    return [toxic["name"] for toxic in api.get("/proxies/db/toxics").json()]


def _wait_gone(api: httpx.Client, name: str, bound: float = 30.0) -> None:
    assert wait_until(lambda: name not in _names(api), timeout=bound), \
        f"{name} still there after {bound}s"


def test_an_expired_toxic_is_removed_and_logged(api: httpx.Client, echo: EchoServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    proxy = make_proxy(api, "db", echo.address)
    expires = time.time() + 1
    with caplog.at_level(logging.INFO, logger="chaosrunner.proxy"):
        created = api.post("/proxies/db/toxics", json={
            "name": "slow", "type": "latency",
            "attributes": {"latency": 60_000, "expires_at": expires}})
        assert created.status_code == 200
        assert created.json()["attributes"] == {"latency": 60_000, "jitter": 0,
                                                "expires_at": expires}
        _wait_gone(api, "slow")
        with connect(port_of(proxy), timeout=20) as sock:
            sock.sendall(b"ping")  # no longer delayed by 60 s
            assert recv_exact(sock, 4) == b"ping"
    assert any("toxic slow (latency, downstream) expired" in r.getMessage()
               for r in caplog.records)


def test_expiry_can_be_renewed_and_cleared(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    api.post("/proxies/db/toxics", json={"name": "gone", "type": "http_error",
                                         "attributes": {"expires_at": time.time() + 0.5}})
    api.post("/proxies/db/toxics", json={"name": "kept", "type": "noop",
                                         "attributes": {"expires_at": time.time() + 0.5}})
    renewed = api.patch("/proxies/db/toxics/kept", json={"attributes": {"expires_at": None}})
    assert "expires_at" not in renewed.json()["attributes"]
    _wait_gone(api, "gone")
    assert _names(api) == ["kept"]


def test_a_toxic_without_expiry_shows_no_new_attribute(api: httpx.Client,
                                                       echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    created = api.post("/proxies/db/toxics", json={"type": "latency",
                                                   "attributes": {"latency": 5}})
    assert created.json()["attributes"] == {"latency": 5, "jitter": 0}


@pytest.mark.parametrize("value", ["tomorrow", True, [1], "Infinity", "NaN"])
def test_a_bad_expiry_is_refused(api: httpx.Client, echo: EchoServer, value: object) -> None:
    make_proxy(api, "db", echo.address)
    body = json.dumps({"type": "latency", "attributes": {"expires_at": value}})
    if value in ("Infinity", "NaN"):  # what Python's json (and some clients) emit
        body = body.replace(f'"{value}"', str(value))
    response = api.post("/proxies/db/toxics", content=body)
    assert response.status_code == 400
    assert "expires_at must be Unix time" in response.json()["error"]
    assert _names(api) == []


def test_renewing_an_expiry_keeps_each_connections_coin(api: httpx.Client, echo: EchoServer,
                                                        server: ProxyServerHandle) -> None:
    """The driver renews a lease every few seconds: that must not re-flip the toxicity coin
    of open connections (a real update does, as in Toxiproxy)."""
    proxy = make_proxy(api, "db", echo.address)
    api.post("/proxies/db/toxics", json={"name": "slow", "type": "latency", "toxicity": 0.5,
                                         "attributes": {"latency": 1,
                                                        "expires_at": time.time() + 60}})
    with connect(port_of(proxy)) as sock:
        sock.sendall(b"ping")
        assert recv_exact(sock, 4) == b"ping"
        [link] = server.running.api.collection.proxies["db"].links
        [slot] = link.down.slots
        for _ in range(5):
            renewed = api.patch("/proxies/db/toxics/slow",
                                json={"attributes": {"expires_at": time.time() + 60}})
            assert renewed.status_code == 200
        assert link.down.slots == [slot] and link.down.slots[0] is slot
        assert api.patch("/proxies/db/toxics/slow", json={"toxicity": 0.5}).status_code == 200
        assert link.down.slots[0] is not slot

"""toxiproxy.http_* actions and toxic expiry through the driver, on `chaosrunner proxy`;
and what a Toxiproxy that does not know HTTP toxics makes the driver say."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import requests
from proxy.httphelp import PlainServer

from chaosrunner.drivers import toxiproxy as module
from chaosrunner.drivers.base import DEADLINE_PARAM, DriverContext, Handle, ParamError
from chaosrunner.drivers.toxiproxy import ToxiproxyDriver
from chaosrunner.errors import DriverUnavailable
from chaosrunner.proxy.server import start_background


@pytest.fixture
def driver() -> ToxiproxyDriver:
    return ToxiproxyDriver(DriverContext(run_id="t", api_timeout=5.0, retries=1))


@pytest.fixture
def ours(web: PlainServer) -> Iterator[tuple[str, str]]:
    """`chaosrunner proxy` with a proxy `web` in front of a plain HTTP server: (api, base)."""
    handle = start_background()
    try:
        created = httpx.post(f"{handle.url}/proxies", json={
            "name": "web", "listen": "127.0.0.1:0", "upstream": web.address}).json()
        yield handle.url, f"http://{created['listen']}"
    finally:
        handle.stop()


def inject(driver: ToxiproxyDriver, api: str, action: str, params: dict[str, Any],
           key: str, **extra: Any) -> Handle:
    target = {"proxy": "web", "api": api}
    normalised = driver.validate(action, target, params)
    [instance] = driver.resolve(action, target)
    return driver.inject(instance, action, {**normalised, **extra}, key)


def attributes(api: str, handle: Handle) -> dict[str, Any]:
    answer = httpx.get(f"{api}/proxies/web/toxics/{handle.data['toxic']}")
    if answer.status_code == 404:
        return {}
    result: dict[str, Any] = answer.json()["attributes"]
    return result


def test_validate_http_actions(driver: ToxiproxyDriver) -> None:
    target = {"proxy": "web"}
    assert driver.validate("toxiproxy.http_error", target, {
        "status": 503, "method": "POST", "path": "^/pay", "toxicity": "20%"}) == {
        "type": "http_error", "stream": "downstream", "toxicity": 0.2,
        "attributes": {"status": 503, "body": "", "response_headers": {}, "method": "POST",
                       "path": "^/pay", "headers": {}}}
    assert driver.validate("toxiproxy.http_latency", target, {
        "latency": "1.5s", "headers": {"X-Canary": "yes"}})["attributes"] == {
        "latency": 1500, "jitter": 0, "method": "", "path": "", "headers": {"X-Canary": "yes"}}
    for action, params, key in (("toxiproxy.http_error", {"status": 200}, "status"),
                                ("toxiproxy.http_error", {"path": "("}, "path"),
                                ("toxiproxy.http_reset", {"headers": {"a": "["}}, "headers"),
                                ("toxiproxy.http_reset", {"stream": "upstream"}, "stream"),
                                ("toxiproxy.http_latency", {}, "latency")):
        with pytest.raises(ParamError) as caught:
            driver.validate(action, target, params)
        assert caught.value.key_path == ("with", key), (action, params)


def test_http_actions_inject_and_revert(driver: ToxiproxyDriver, ours: tuple[str, str],
                                        web: PlainServer) -> None:
    api, base = ours
    error = inject(driver, api, "toxiproxy.http_error",
                   {"status": 503, "method": "^POST$", "path": "^/pay"}, "r1.err.0")
    latency = inject(driver, api, "toxiproxy.http_latency",
                     {"latency": "300ms", "path": "^/slow"}, "r1.lat.0")
    reset = inject(driver, api, "toxiproxy.http_reset", {"path": "^/boom"}, "r1.rst.0")
    with requests.Session() as session:
        assert session.post(base + "/pay", data=b"x").status_code == 503
        start = time.monotonic()
        assert session.get(base + "/slow").status_code == 200
        assert time.monotonic() - start >= 0.3
        with pytest.raises(requests.ConnectionError):
            session.get(base + "/boom")
        for handle in (error, latency, reset):
            driver.revert(handle)
            driver.revert(handle)  # idempotent
        assert session.post(base + "/pay", data=b"x").status_code == 200
    assert httpx.get(f"{api}/proxies/web/toxics").json() == []


def test_the_engines_deadline_becomes_the_toxics_expiry(driver: ToxiproxyDriver,
                                                        ours: tuple[str, str]) -> None:
    api, _ = ours
    deadline = time.time() + 1.0
    handle = inject(driver, api, "toxiproxy.latency", {"latency": "50ms"}, "r2.lat.0",
                    **{DEADLINE_PARAM: deadline})
    assert attributes(api, handle)["expires_at"] == deadline
    stop = time.monotonic() + 30
    while attributes(api, handle):  # the proxy removes it by itself, no revert called
        assert time.monotonic() < stop
        time.sleep(0.05)
    driver.revert(handle)  # and a late revert is still fine


def test_a_lease_is_renewed_while_the_process_lives(driver: ToxiproxyDriver,
                                                    ours: tuple[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = ours
    monkeypatch.setattr(module, "LEASE", 0.9)
    handle = inject(driver, api, "toxiproxy.http_reset", {"path": "^/x"}, "r3.rst.0")
    first = attributes(api, handle)["expires_at"]
    assert first <= time.time() + 0.9
    stop = time.monotonic() + 40  # a renewer started by an earlier test may sleep 10 s first
    while attributes(api, handle).get("expires_at", first) <= first + 1.0:
        assert attributes(api, handle), "the lease ran out instead of being renewed"
        assert time.monotonic() < stop
        time.sleep(0.05)
    driver.revert(handle)
    assert attributes(api, handle) == {}


class _LikeToxiproxy(BaseHTTPRequestHandler):
    """Answers as Toxiproxy 2.12 does: no `chaosrunner` in /version, unknown types refused."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/version":
            self._json(200, {"version": "2.12.0"})
        else:
            self._json(200, {"name": "web", "listen": "127.0.0.1:1", "upstream": "x:1",
                             "enabled": True, "toxics": []})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json(400, {"error": "invalid toxic type", "status": 400})


@pytest.fixture
def toxiproxy_like() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LikeToxiproxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_real_toxiproxy_is_told_apart(driver: ToxiproxyDriver, toxiproxy_like: str) -> None:
    target = {"proxy": "web", "api": toxiproxy_like}
    with pytest.raises(DriverUnavailable) as caught:
        driver.resolve("toxiproxy.http_error", target)
    message = str(caught.value)
    assert "only `chaosrunner proxy` has" in message and "Toxiproxy 2.12.0" in message
    [instance] = driver.resolve("toxiproxy.latency", target)  # TCP toxics are fine there
    params = driver.validate("toxiproxy.http_reset", target, {})
    with pytest.raises(DriverUnavailable, match="only `chaosrunner proxy` has"):
        driver.inject(instance, "toxiproxy.http_reset", params, "r4.rst.0")

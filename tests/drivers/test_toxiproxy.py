"""The toxiproxy driver against a Toxiproxy API: a real one when TOXIPROXY_URL is set,
otherwise the embedded `chaosrunner proxy` server. The same tests run against both."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from proxy.proxyhelp import EchoServer, connect, recv_exact
from services import need

from chaosrunner.drivers.base import DriverContext, Handle, Instance, ParamError, get_driver
from chaosrunner.drivers.toxiproxy import ToxiproxyDriver, toxic_name
from chaosrunner.errors import DriverUnavailable, TargetNotFound
from chaosrunner.testing.contract import ContractCase, DriverContract


@pytest.fixture
def api_url() -> Iterator[str]:
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        try:
            httpx.get(f"{url}/version", timeout=3).raise_for_status()
            reachable, why = True, ""
        except httpx.HTTPError as exc:
            reachable, why = False, f"TOXIPROXY_URL={url}: {exc}"
        need("toxiproxy", reachable, why)
        yield url.rstrip("/")
        return
    from chaosrunner.proxy.server import start_background

    handle = start_background()
    try:
        yield handle.url
    finally:
        handle.stop()


@pytest.fixture
def proxy(api_url: str, echo: EchoServer) -> Iterator[tuple[str, int]]:
    """A fresh proxy in front of an echo server: (name, listen port). Deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=api_url, timeout=10) as client:
        response = client.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                                 "upstream": echo.address})
        assert response.status_code == 201, response.text
        port = int(response.json()["listen"].rsplit(":", 1)[1])
        try:
            yield name, port
        finally:
            client.delete(f"/proxies/{name}")


@pytest.fixture
def driver() -> ToxiproxyDriver:
    return ToxiproxyDriver(DriverContext(run_id="t", api_timeout=5.0, retries=1))


def toxics(api_url: str, proxy: str) -> list[dict[str, object]]:
    response = httpx.get(f"{api_url}/proxies/{proxy}/toxics", timeout=10)
    assert response.status_code == 200
    result: list[dict[str, object]] = response.json()
    return result


def inject(driver: ToxiproxyDriver, api_url: str, proxy: str, action: str,
           params: dict[str, object], key: str) -> Handle:
    target = {"proxy": proxy, "api": api_url}
    normalised = driver.validate(action, target, params)
    [instance] = driver.resolve(action, target)
    return driver.inject(instance, action, normalised, key)


# --- validate ------------------------------------------------------------------------------


def test_registry_finds_the_driver() -> None:
    assert isinstance(get_driver("toxiproxy"), ToxiproxyDriver)


@pytest.mark.parametrize(("action", "params", "expected"), [
    ("toxiproxy.latency", {"latency": "500ms", "jitter": "50ms"},
     {"latency": 500, "jitter": 50}),
    ("toxiproxy.latency", {"latency": "1.5s"}, {"latency": 1500, "jitter": 0}),
    ("toxiproxy.bandwidth", {"rate": "2MB/s"}, {"rate": 2000}),
    ("toxiproxy.bandwidth", {"rate": 64}, {"rate": 64}),
    ("toxiproxy.timeout", {"timeout": "2s"}, {"timeout": 2000}),
    ("toxiproxy.timeout", {}, {"timeout": 0}),
    ("toxiproxy.reset_peer", {"timeout": "100ms"}, {"timeout": 100}),
    ("toxiproxy.slow_close", {"delay": "1s"}, {"delay": 1000}),
    ("toxiproxy.slicer", {"average_size": 64, "size_variation": 8, "delay": "2ms"},
     {"average_size": 64, "size_variation": 8, "delay": 2000}),  # microseconds
    ("toxiproxy.limit_data", {"bytes": 1024}, {"bytes": 1024}),
])
def test_validate_normalises_units(driver: ToxiproxyDriver, action: str,
                                   params: dict[str, object], expected: dict[str, int]) -> None:
    result = driver.validate(action, {"proxy": "db"}, params)
    assert result["attributes"] == expected
    assert result["stream"] == "downstream" and result["toxicity"] == 1.0
    assert driver.validate(action, {"proxy": "db"}, result) == result  # already normalised


def test_validate_stream_and_toxicity(driver: ToxiproxyDriver) -> None:
    result = driver.validate("toxiproxy.latency", {"proxy": "db"},
                             {"latency": "1s", "stream": "upstream", "toxicity": "50%"})
    assert (result["stream"], result["toxicity"]) == ("upstream", 0.5)


@pytest.mark.parametrize(("action", "target", "params", "path"), [
    ("toxiproxy.latency", {"proxy": "db"}, {}, ("with", "latency")),
    ("toxiproxy.latency", {"proxy": "db"}, {"latency": 500}, ("with", "latency")),
    ("toxiproxy.latency", {"proxy": "db"}, {"latency": "1s", "jiter": "1ms"}, ("with", "jiter")),
    ("toxiproxy.latency", {"proxy": "db"}, {"latency": "1s", "stream": "both"},
     ("with", "stream")),
    ("toxiproxy.latency", {"proxy": "db"}, {"latency": "1s", "toxicity": 2},
     ("with", "toxicity")),
    ("toxiproxy.slicer", {"proxy": "db"}, {"average_size": 0}, ("with", "average_size")),
    ("toxiproxy.bandwidth", {"proxy": "db"}, {"rate": "fast"}, ("with", "rate")),
    ("toxiproxy.down", {"proxy": "db"}, {"latency": "1s"}, ("with", "latency")),
    ("toxiproxy.latency", {}, {"latency": "1s"}, ("target", "proxy")),
    ("toxiproxy.latency", {"proxy": "db", "host": "x"}, {"latency": "1s"}, ("target", "host")),
    ("toxiproxy.latency", {"proxy": "db", "api": "localhost:8474"}, {"latency": "1s"},
     ("target", "api")),
    ("toxiproxy.jitter", {"proxy": "db"}, {}, ("action",)),
])
def test_validate_rejects_with_key_path(driver: ToxiproxyDriver, action: str,
                                        target: dict[str, object], params: dict[str, object],
                                        path: tuple[str, ...]) -> None:
    with pytest.raises(ParamError) as info:
        driver.validate(action, target, params)
    assert info.value.key_path == path


def test_toxic_name_is_stable_and_distinct() -> None:
    assert toxic_name("run/a/b") == toxic_name("run/a/b")
    assert toxic_name("run/a/b") != toxic_name("run_a_b")
    assert toxic_name("x" * 500).startswith("chaosrunner_") and len(toxic_name("x" * 500)) < 110


# --- against the API ---------------------------------------------------------------------------


def test_resolve(driver: ToxiproxyDriver, api_url: str, proxy: tuple[str, int]) -> None:
    name, port = proxy
    [instance] = driver.resolve("toxiproxy.latency", {"proxy": name, "api": api_url})
    assert instance.name == name and instance.attrs["api"] == api_url
    assert str(instance.attrs["listen"]).endswith(f":{port}")
    with pytest.raises(TargetNotFound, match=name):
        driver.resolve("toxiproxy.latency", {"proxy": "nope", "api": api_url})


def test_latency_inject_and_revert(driver: ToxiproxyDriver, api_url: str,
                                   proxy: tuple[str, int]) -> None:
    name, port = proxy
    with connect(port) as sock:
        handle = inject(driver, api_url, name, "toxiproxy.latency", {"latency": "400ms"},
                        "run1/slow/payments")
        [toxic] = toxics(api_url, name)
        assert toxic["name"] == toxic_name("run1/slow/payments") == handle.data["toxic"]
        attributes = dict(toxic["attributes"])  # type: ignore[call-overload]
        expires_at = attributes.pop("expires_at", None)  # chaosrunner proxy only
        assert attributes == {"latency": 400, "jitter": 0}
        assert expires_at is None or time.time() < expires_at <= time.time() + 31
        start = time.monotonic()
        sock.sendall(b"x")
        assert recv_exact(sock, 1) == b"x"
        assert time.monotonic() - start >= 0.4  # the open connection is slowed
        driver.revert(handle)
        assert toxics(api_url, name) == []
        driver.revert(handle)  # idempotent: already gone is fine


def test_revert_deletes_only_this_runs_toxic(driver: ToxiproxyDriver, api_url: str,
                                             proxy: tuple[str, int]) -> None:
    name, _ = proxy
    httpx.post(f"{api_url}/proxies/{name}/toxics", timeout=10,
               json={"name": "someone-elses", "type": "latency"})
    handle = inject(driver, api_url, name, "toxiproxy.bandwidth", {"rate": 10}, "run2/bw/p")
    driver.revert(handle)
    assert [t["name"] for t in toxics(api_url, name)] == ["someone-elses"]


def test_provisional_handle_reverts(driver: ToxiproxyDriver, api_url: str,
                                    proxy: tuple[str, int]) -> None:
    name, _ = proxy
    [instance] = driver.resolve("toxiproxy.timeout", {"proxy": name, "api": api_url})
    params = driver.validate("toxiproxy.timeout", {"proxy": name}, {"timeout": "1s"})
    provisional = Handle.provisional("toxiproxy.timeout", instance, params, "run3/t/p")
    ToxiproxyDriver().revert(provisional)  # never injected: a no-op
    driver.inject(instance, "toxiproxy.timeout", params, "run3/t/p")
    assert len(toxics(api_url, name)) == 1
    # A new process (recover) with only the provisional handle's JSON takes it back.
    ToxiproxyDriver().revert(Handle.from_json(provisional.to_json()))
    assert toxics(api_url, name) == []


def test_inject_twice_with_same_key_is_one_toxic(driver: ToxiproxyDriver, api_url: str,
                                                 proxy: tuple[str, int]) -> None:
    name, _ = proxy
    inject(driver, api_url, name, "toxiproxy.limit_data", {"bytes": 10}, "run4/l/p")
    handle = inject(driver, api_url, name, "toxiproxy.limit_data", {"bytes": 10}, "run4/l/p")
    assert len(toxics(api_url, name)) == 1
    driver.revert(handle)
    assert toxics(api_url, name) == []


def test_down_and_revert(driver: ToxiproxyDriver, api_url: str, proxy: tuple[str, int]) -> None:
    name, port = proxy
    handle = inject(driver, api_url, name, "toxiproxy.down", {}, "run5/down/p")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    ToxiproxyDriver().revert(Handle.from_json(handle.to_json()))
    with connect(port) as sock:
        sock.sendall(b"up")
        assert recv_exact(sock, 2) == b"up"
    driver.revert(handle)  # enabling an enabled proxy is fine


def test_every_toxic_action_round_trips(driver: ToxiproxyDriver, api_url: str,
                                        proxy: tuple[str, int]) -> None:
    name, _ = proxy
    cases = {"latency": {"latency": "10ms"}, "bandwidth": {"rate": 100},
             "timeout": {"timeout": "5s"}, "reset_peer": {"timeout": "1s"},
             "slow_close": {"delay": "10ms"}, "slicer": {"average_size": 10, "delay": "1ms"},
             "limit_data": {"bytes": 100000}}
    handles = [inject(driver, api_url, name, f"toxiproxy.{verb}", params, f"run6/{verb}")
               for verb, params in cases.items()]
    assert sorted(t["type"] for t in toxics(api_url, name)) == sorted(cases)
    for handle in reversed(handles):
        driver.revert(handle)
    assert toxics(api_url, name) == []


def test_revert_after_proxy_deleted_is_fine(driver: ToxiproxyDriver, api_url: str,
                                            echo: EchoServer) -> None:
    httpx.post(f"{api_url}/proxies", timeout=10, json={
        "name": "short-lived", "listen": "127.0.0.1:0", "upstream": echo.address})
    handle = inject(driver, api_url, "short-lived", "toxiproxy.latency", {"latency": "1s"},
                    "run7/x")
    httpx.delete(f"{api_url}/proxies/short-lived", timeout=10)
    driver.revert(handle)  # 404: the fault is gone with the proxy


def test_unreachable_api_is_driver_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    driver = ToxiproxyDriver(DriverContext(api_timeout=1.0, retries=1))
    with pytest.raises(DriverUnavailable) as info:
        driver.resolve("toxiproxy.latency", {"proxy": "db", "api": url})
    assert url in str(info.value) and "chaosrunner proxy" in str(info.value)
    instance = Instance("toxiproxy", f"{url}/proxies/db", "db", {"api": url})
    with pytest.raises(DriverUnavailable):
        driver.revert(Handle.provisional("toxiproxy.latency", instance, {}, "k"))


def test_retries_through_a_flaky_api(api_url: str, proxy: tuple[str, int]) -> None:
    name, _ = proxy
    failures = {"left": 2}
    real = httpx.HTTPTransport()

    class Flaky(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if failures["left"]:
                failures["left"] -= 1
                raise httpx.ConnectError("connection refused", request=request)
            return real.handle_request(request)

        def close(self) -> None:
            pass

    driver = ToxiproxyDriver(DriverContext(retries=3), transport=Flaky())
    try:
        handle = inject(driver, api_url, name, "toxiproxy.latency", {"latency": "5ms"}, "r8")
        driver.revert(handle)
    finally:
        real.close()
    assert failures["left"] == 0 and toxics(api_url, name) == []


def test_health_checks_the_apis_in_use(api_url: str, proxy: tuple[str, int]) -> None:
    driver = ToxiproxyDriver()
    driver.resolve("toxiproxy.latency", {"proxy": proxy[0], "api": api_url})
    driver.health()


# --- the shared driver contract, judged on the data path ------------------------------------


def _slow(port: int, threshold: float) -> bool:
    try:
        with connect(port, timeout=10) as sock:
            start = time.monotonic()
            sock.sendall(b"?")
            return recv_exact(sock, 1) != b"?" or time.monotonic() - start >= threshold
    except OSError:
        return True  # refused or reset: faulted as far as a client can tell


class TestToxiproxyDriverContract(DriverContract):
    @pytest.fixture(params=["latency", "down"])
    def case(self, request: pytest.FixtureRequest, api_url: str,
             proxy: tuple[str, int]) -> ContractCase:
        name, port = proxy
        if request.param == "latency":
            return ContractCase(driver=ToxiproxyDriver(), action="toxiproxy.latency",
                                target={"proxy": name, "api": api_url},
                                params={"latency": "300ms"},
                                faulted=lambda instance: _slow(port, 0.3))
        return ContractCase(driver=ToxiproxyDriver(), action="toxiproxy.down",
                            target={"proxy": name, "api": api_url}, params={},
                            faulted=lambda instance: _slow(port, 5.0))


# --- proxy_regex: every matching proxy -------------------------------------------------------


def test_proxy_regex_resolves_every_matching_proxy(api_url: str, echo: EchoServer,
                                                   driver: ToxiproxyDriver) -> None:
    prefix = f"rx-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-a", f"{prefix}-b", f"other-{prefix}"]
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for name in names:
            assert client.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                                 "upstream": echo.address}).status_code == 201
        try:
            target = {"proxy_regex": f"^{prefix}-", "api": api_url}
            params = driver.validate("toxiproxy.latency", target, {"latency": "50ms"})
            instances = driver.resolve("toxiproxy.latency", target)
            assert [i.name for i in instances] == names[:2]
            handles = [driver.inject(i, "toxiproxy.latency", params, f"k{n}")
                       for n, i in enumerate(instances)]
            assert all(len(toxics(api_url, name)) == 1 for name in names[:2])
            assert toxics(api_url, names[2]) == []
            for handle in handles:
                driver.revert(handle)
            assert all(toxics(api_url, name) == [] for name in names)
        finally:
            for name in names:
                client.delete(f"/proxies/{name}")


@pytest.mark.parametrize("target", [{"proxy": "a", "proxy_regex": "a"}, {"proxy_regex": "("}])
def test_proxy_and_proxy_regex_are_exclusive_and_checked(target: dict[str, str]) -> None:
    with pytest.raises(ParamError):
        ToxiproxyDriver().validate("toxiproxy.latency", target, {"latency": "1ms"})

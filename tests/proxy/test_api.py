"""Conformance of the HTTP API with Toxiproxy 2.12: endpoints, shapes, status codes, errors."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest
from proxyhelp import EchoServer, connect, make_proxy, port_of, recv_exact


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["status"] == response.status_code
    return response.status_code, body["error"]


def test_version_and_request_id_on_every_response(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.json()["version"].startswith("2.")
    ids = {api.get(path).headers["X-Toxiproxy-Request-Id"]
           for path in ("/version", "/proxies", "/nope", "/proxies/missing")}
    assert len(ids) == 4  # present on 200 and 404 alike, and unique per request


def test_browser_user_agent_is_refused(api: httpx.Client) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403
    assert "X-Toxiproxy-Request-Id" in response.headers
    assert api.get("/proxies", headers={"User-Agent": "curl/8.0"}).status_code == 200


def test_unknown_route_and_method(api: httpx.Client) -> None:
    assert api.get("/nothing/here").status_code == 404
    assert api.put("/proxies").status_code == 405


def test_create_proxy_shape_and_rewritten_listen(api: httpx.Client, echo: EchoServer) -> None:
    response = api.post("/proxies", json={"name": "db", "listen": "127.0.0.1:0",
                                          "upstream": echo.address})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["enabled"] is True  # default
    assert body["toxics"] == []
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    with connect(int(port)) as sock:
        sock.sendall(b"ping")
        assert recv_exact(sock, 4) == b"ping"
    assert api.get("/proxies").json() == {"db": body}
    assert api.get("/proxies/db").json() == body


def test_create_errors(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    assert error(api.post("/proxies", json={"name": "db", "upstream": echo.address})) == \
        (409, "proxy already exists")
    assert error(api.post("/proxies", json={"upstream": echo.address})) == \
        (400, "missing required field: name")
    assert error(api.post("/proxies", json={"name": "x"})) == \
        (400, "missing required field: upstream")
    status, message = error(api.post("/proxies", content=b"{not json"))
    assert status == 400 and message.startswith("bad request body: ")
    assert error(api.get("/proxies/ghost")) == (404, "proxy not found")


def test_listen_error_is_500(api: httpx.Client, echo: EchoServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status, message = error(api.post("/proxies", json={
            "name": "clash", "listen": f"127.0.0.1:{port}", "upstream": echo.address}))
    assert status == 500
    assert message == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert api.get("/proxies/clash").status_code == 404


def test_created_disabled_does_not_listen(api: httpx.Client, echo: EchoServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    body = make_proxy(api, "off", echo.address, enabled=False, listen=f"127.0.0.1:{port}")
    assert body["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert api.patch("/proxies/off", json={"enabled": True}).json()["enabled"] is True
    with connect(port) as sock:
        sock.sendall(b"on")
        assert recv_exact(sock, 2) == b"on"


def test_disable_closes_listener_and_connections_keeps_toxics(
        api: httpx.Client, echo: EchoServer) -> None:
    proxy = make_proxy(api, "db", echo.address)
    port = port_of(proxy)
    api.post("/proxies/db/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    with connect(port) as sock:
        sock.sendall(b"a")
        assert recv_exact(sock, 1) == b"a"
        response = api.patch("/proxies/db", json={"enabled": False})
        assert response.status_code == 200 and response.json()["enabled"] is False
        with contextlib.suppress(ConnectionResetError):  # closed either way is fine
            assert sock.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert [t["name"] for t in api.get("/proxies/db/toxics").json()] == ["latency_downstream"]
    # POST is Toxiproxy's deprecated spelling of PATCH and still works.
    assert api.post("/proxies/db", json={"enabled": True}).json()["enabled"] is True
    with connect(port) as sock:  # same address as before
        sock.sendall(b"b")
        assert recv_exact(sock, 1) == b"b"


def test_patch_upstream_restarts_proxy(api: httpx.Client, echo: EchoServer) -> None:
    other = EchoServer()
    try:
        port = port_of(make_proxy(api, "db", "127.0.0.1:1"))
        body = api.patch("/proxies/db", json={"upstream": other.address}).json()
        assert body["upstream"] == other.address and body["enabled"] is True
        with connect(port) as sock:
            sock.sendall(b"moved")
            assert recv_exact(sock, 5) == b"moved"
    finally:
        other.close()


def test_delete_proxy(api: httpx.Client, echo: EchoServer) -> None:
    port = port_of(make_proxy(api, "db", echo.address))
    response = api.delete("/proxies/db")
    assert response.status_code == 204 and response.content == b""
    assert error(api.delete("/proxies/db")) == (404, "proxy not found")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_toxic_create_defaults_and_shape(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    response = api.post("/proxies/db/toxics", json={"type": "latency",
                                                    "attributes": {"latency": 10}})
    assert response.status_code == 200
    assert response.json() == {"attributes": {"latency": 10, "jitter": 0},
                               "name": "latency_downstream", "type": "latency",
                               "stream": "downstream", "toxicity": 1.0}
    response = api.post("/proxies/db/toxics", json={"type": "slicer", "stream": "upstream",
                                                    "attributes": {"average_size": 5}})
    assert response.json()["name"] == "slicer_upstream"
    assert response.json()["attributes"] == {"average_size": 5, "size_variation": 0, "delay": 0}
    listed = api.get("/proxies/db/toxics").json()
    assert [t["name"] for t in listed] == ["slicer_upstream", "latency_downstream"]
    assert api.get("/proxies/db").json()["toxics"] == listed
    assert api.get("/proxies/db/toxics/latency_downstream").json()["type"] == "latency"


@pytest.mark.parametrize(("body", "expected"), [
    ({"type": "latency"}, (409, "toxic already exists")),
    ({"type": "warp"}, (400, "invalid toxic type")),
    ({"type": "latency", "name": "x", "stream": "sideways"},
     (400, "stream was invalid, can be either upstream or downstream")),
    ({"type": "slicer", "name": "s", "attributes": {"average_size": 0}},
     (400, "bad request body: average_size must be greater than 0")),
])
def test_toxic_create_errors(api: httpx.Client, echo: EchoServer, body: dict[str, object],
                             expected: tuple[int, str]) -> None:
    make_proxy(api, "db", echo.address)
    assert api.post("/proxies/db/toxics", json={"type": "latency"}).status_code == 200
    assert error(api.post("/proxies/db/toxics", json=body)) == expected


def test_toxic_attribute_type_error(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    status, message = error(api.post("/proxies/db/toxics", json={
        "type": "latency", "attributes": {"latency": "slow"}}))
    assert status == 400 and message.startswith("bad request body: json: cannot unmarshal")


def test_toxic_not_found_cases(api: httpx.Client, echo: EchoServer) -> None:
    assert error(api.post("/proxies/ghost/toxics", json={"type": "latency"})) == \
        (404, "proxy not found")
    make_proxy(api, "db", echo.address)
    assert error(api.get("/proxies/db/toxics/ghost")) == (404, "toxic not found")
    assert error(api.patch("/proxies/db/toxics/ghost", json={})) == (404, "toxic not found")
    assert error(api.delete("/proxies/db/toxics/ghost")) == (404, "toxic not found")


def test_toxic_update_merges_and_delete(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "db", echo.address)
    api.post("/proxies/db/toxics", json={"name": "slow", "type": "latency",
                                         "attributes": {"latency": 10, "jitter": 2}})
    response = api.patch("/proxies/db/toxics/slow", json={"attributes": {"latency": 20},
                                                          "toxicity": 0.5})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 20, "jitter": 2}
    assert response.json()["toxicity"] == 0.5
    assert api.post("/proxies/db/toxics/slow", json={"attributes": {"jitter": 0}}).json()[
        "attributes"] == {"latency": 20, "jitter": 0}
    assert api.delete("/proxies/db/toxics/slow").status_code == 204
    assert api.get("/proxies/db/toxics").json() == []


def test_populate_creates_and_leaves_identical_alone(api: httpx.Client, echo: EchoServer) -> None:
    entries = [{"name": "a", "listen": "127.0.0.1:0", "upstream": echo.address},
               {"name": "b", "listen": "127.0.0.1:0", "upstream": echo.address,
                "enabled": False}]
    response = api.post("/populate", json=entries)
    assert response.status_code == 201
    created = {p["name"]: p for p in response.json()["proxies"]}
    assert created["a"]["enabled"] is True and created["b"]["enabled"] is False
    api.post("/proxies/a/toxics", json={"type": "latency"})
    again = api.post("/populate", json=entries)
    assert again.status_code == 201
    a = api.get("/proxies/a").json()
    assert a["listen"] == created["a"]["listen"]  # not restarted
    assert [t["name"] for t in a["toxics"]] == ["latency_downstream"]


def test_populate_validates_everything_first(api: httpx.Client, echo: EchoServer) -> None:
    response = api.post("/populate", json=[
        {"name": "ok", "listen": "127.0.0.1:0", "upstream": echo.address},
        {"name": "bad", "listen": "127.0.0.1:0"}])
    assert response.status_code == 400
    assert response.json()["error"] == "missing required field: upstream at proxy 2"
    assert api.get("/proxies").json() == {}  # the valid first entry was not created


def test_populate_replaces_a_changed_proxy(api: httpx.Client, echo: EchoServer) -> None:
    make_proxy(api, "a", "127.0.0.1:1")
    response = api.post("/populate", json=[{"name": "a", "listen": "127.0.0.1:0",
                                            "upstream": echo.address}])
    assert response.status_code == 201
    assert api.get("/proxies/a").json()["upstream"] == echo.address


def test_reset_enables_all_and_removes_toxics(api: httpx.Client, echo: EchoServer) -> None:
    port = port_of(make_proxy(api, "a", echo.address))
    api.post("/proxies/a/toxics", json={"type": "timeout", "stream": "upstream"})
    api.patch("/proxies/a", json={"enabled": False})
    response = api.post("/reset")
    assert response.status_code == 204
    body = api.get("/proxies/a").json()
    assert body["enabled"] is True and body["toxics"] == []
    with connect(port) as sock:
        sock.sendall(b"back")
        assert recv_exact(sock, 4) == b"back"


def test_metrics_count_bytes(api: httpx.Client, echo: EchoServer) -> None:
    port = port_of(make_proxy(api, "m", echo.address))
    with connect(port) as sock:
        sock.sendall(b"x" * 1000)
        assert len(recv_exact(sock, 1000)) == 1000
    text = api.get("/metrics").text
    line = next(row for row in text.splitlines()
                if row.startswith("toxiproxy_proxy_received_bytes_total{direction=\"upstream\""))
    assert 'proxy="m"' in line and line.endswith(" 1000")
    assert "# TYPE toxiproxy_proxy_sent_bytes_total counter" in text


@pytest.mark.parametrize(("field", "value", "go_type"), [
    ("listen", 8080, "string"), ("upstream", ["x"], "string"), ("enabled", "yes", "bool")])
def test_proxy_field_type_errors(api: httpx.Client, echo: EchoServer, field: str,
                                 value: object, go_type: str) -> None:
    body = {"name": "typed", "listen": "127.0.0.1:0", "upstream": echo.address, field: value}
    status, message = error(api.post("/proxies", json=body))
    assert status == 400
    assert message.endswith(f"Go struct field Proxy.{field} of type {go_type}")
    assert api.get("/proxies/typed").status_code == 404

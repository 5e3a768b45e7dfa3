"""The Toxiproxy-compatible HTTP API (Toxiproxy 2.12's endpoints, shapes and status codes).

    GET  /version                        {"version": "2.12.0", ...}
    GET  /proxies                        {name: proxy, ...}
    POST /proxies                        201 proxy | 400 | 409 | 500 (listen error)
    POST /populate                       201 {"proxies": [...]} | error + "proxies"
    GET|PATCH|POST|DELETE /proxies/{p}   200 proxy | 204 | 404
    GET|POST /proxies/{p}/toxics         200 [toxic] | 200 toxic | 400 | 404 | 409
    GET|PATCH|POST|DELETE /proxies/{p}/toxics/{t}
    POST /reset                          204
    GET  /metrics                        Prometheus text

Every response carries `X-Toxiproxy-Request-Id`; requests with a browser User-Agent get
403, as Toxiproxy guards against cross-site requests from web pages.

Run it in the foreground with `serve()` (the CLI) or in a thread with `start_background()`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chaosrunner import __version__
from chaosrunner.proxy.http import Request, Response, serve_connection
from chaosrunner.proxy.proxies import ProxyCollection, join_address
from chaosrunner.proxy.toxics import STREAMS, ApiError, bad_request

TOXIPROXY_VERSION = "2.12.0"

Route = Callable[[Request, list[str]], Awaitable[Response]]


def _json(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode() + b"\n")


def _parse(request: Request) -> Any:
    if not request.body.strip():
        raise bad_request("EOF")
    try:
        return json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(str(exc)) from None


class ApiServer:
    """Routes API requests to the proxy collection."""

    def __init__(self, collection: ProxyCollection | None = None) -> None:
        self.collection = collection or ProxyCollection()
        self.routes: dict[tuple[str, str], Route] = {
            ("version", "GET"): self.version,
            ("metrics", "GET"): self.metrics,
            ("reset", "POST"): self.reset,
            ("populate", "POST"): self.populate,
            ("proxies", "GET"): self.proxy_index,
            ("proxies", "POST"): self.proxy_create,
            ("proxy", "GET"): self.proxy_show,
            ("proxy", "POST"): self.proxy_update,
            ("proxy", "PATCH"): self.proxy_update,
            ("proxy", "DELETE"): self.proxy_delete,
            ("toxics", "GET"): self.toxic_index,
            ("toxics", "POST"): self.toxic_create,
            ("toxic", "GET"): self.toxic_show,
            ("toxic", "POST"): self.toxic_update,
            ("toxic", "PATCH"): self.toxic_update,
            ("toxic", "DELETE"): self.toxic_delete,
        }

    async def handle(self, request: Request) -> Response:
        """Answer one request; every answer gets a request id."""
        response = await self._dispatch(request)
        response.headers["X-Toxiproxy-Request-Id"] = secrets.token_hex(10)
        return response

    async def _dispatch(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        shape = _shape(request.segments)
        if shape is None:
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        route = self.routes.get((shape, request.method))
        if route is None:
            return Response(405, b"", None)
        try:
            return await route(request, request.segments)
        except ApiError as exc:
            return _json(exc.status, exc.to_json())

    # --- server ---

    async def version(self, request: Request, args: list[str]) -> Response:
        body = {"version": TOXIPROXY_VERSION, "chaosrunner": __version__}
        return Response(200, json.dumps(body).encode() + b"\n", "application/json;charset=utf-8")

    async def reset(self, request: Request, args: list[str]) -> Response:
        await self.collection.reset()
        return Response(204)

    async def metrics(self, request: Request, args: list[str]) -> Response:
        return Response(200, render_metrics(self.collection).encode(),
                        "text/plain; version=0.0.4; charset=utf-8")

    # --- proxies ---

    async def proxy_index(self, request: Request, args: list[str]) -> Response:
        return _json(200, {name: proxy.to_json()
                           for name, proxy in self.collection.proxies.items()})

    async def proxy_create(self, request: Request, args: list[str]) -> Response:
        proxy = await self.collection.create(_parse(request))
        return _json(201, proxy.to_json())

    async def populate(self, request: Request, args: list[str]) -> Response:
        try:
            proxies = await self.collection.populate(_parse(request))
        except ApiError as exc:
            return _json(exc.status, {**exc.to_json(), "proxies": None})
        return _json(201, {"proxies": [proxy.to_json() for proxy in proxies]})

    async def proxy_show(self, request: Request, args: list[str]) -> Response:
        return _json(200, self.collection.get(args[1]).to_json())

    async def proxy_update(self, request: Request, args: list[str]) -> Response:
        self.collection.get(args[1])  # 404 before looking at the body, as Toxiproxy
        proxy = await self.collection.update(args[1], _parse(request))
        return _json(200, proxy.to_json())

    async def proxy_delete(self, request: Request, args: list[str]) -> Response:
        self.collection.delete(args[1])
        return Response(204)

    # --- toxics ---

    async def toxic_index(self, request: Request, args: list[str]) -> Response:
        return _json(200, self.collection.get(args[1]).toxic_list())

    async def toxic_create(self, request: Request, args: list[str]) -> Response:
        proxy = self.collection.get(args[1])
        return _json(200, proxy.add_toxic(_parse(request)).to_json())

    async def toxic_show(self, request: Request, args: list[str]) -> Response:
        toxic = self.collection.get(args[1]).find_toxic(args[3])
        if toxic is None:
            raise ApiError("toxic not found", 404)
        return _json(200, toxic.to_json())

    async def toxic_update(self, request: Request, args: list[str]) -> Response:
        proxy = self.collection.get(args[1])
        if proxy.find_toxic(args[3]) is None:
            raise ApiError("toxic not found", 404)
        return _json(200, proxy.update_toxic(args[3], _parse(request)).to_json())

    async def toxic_delete(self, request: Request, args: list[str]) -> Response:
        self.collection.get(args[1]).remove_toxic(args[3])
        return Response(204)


def _shape(segments: list[str]) -> str | None:
    """The route a path matches: 'proxies', 'proxy', 'toxics', 'toxic', ... or None."""
    count = len(segments)
    if count == 1 and segments[0] in ("version", "metrics", "reset", "populate", "proxies"):
        return segments[0]
    if count >= 2 and segments[0] == "proxies":
        if count == 2:
            return "proxy"
        if count == 3 and segments[2] == "toxics":
            return "toxics"
        if count == 4 and segments[2] == "toxics":
            return "toxic"
    return None


def render_metrics(collection: ProxyCollection) -> str:
    """Toxiproxy's proxy metrics (bytes received and sent per direction) in Prometheus text."""
    lines: list[str] = []
    for metric, index in (("received", 0), ("sent", 1)):
        name = f"toxiproxy_proxy_{metric}_bytes_total"
        lines.append(f"# HELP {name} Bytes {metric} by the proxy, per direction.")
        lines.append(f"# TYPE {name} counter")
        for proxy in collection.proxies.values():
            for stream in STREAMS:
                labels = (f'direction="{stream}",listener="{_label(proxy.listen)}",'
                          f'proxy="{_label(proxy.name)}",upstream="{_label(proxy.upstream)}"')
                lines.append(f"{name}{{{labels}}} {proxy.counters[stream][index]}")
    lines.append("# HELP chaosrunner_proxy_connections Open client connections per proxy.")
    lines.append("# TYPE chaosrunner_proxy_connections gauge")
    for proxy in collection.proxies.values():
        lines.append(f'chaosrunner_proxy_connections{{proxy="{_label(proxy.name)}"}} '
                     f"{len(proxy.links)}")
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- running it ------------------------------------------------------------------------------


class RunningServer:
    """An API server listening on a loop; `close()` stops the API and every proxy."""

    def __init__(self, api: ApiServer, server: asyncio.Server,
                 connections: set[asyncio.Task[Any]]) -> None:
        self.api = api
        self.server = server
        self.connections = connections
        host, port = server.sockets[0].getsockname()[:2]
        self.url = f"http://{join_address(host, port)}"

    async def close(self) -> None:
        self.server.close()
        self.api.collection.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        await self.server.wait_closed()


async def start(host: str = "127.0.0.1", port: int = 8474,
                config: list[dict[str, Any]] | None = None,
                zero_copy: bool = True) -> RunningServer:
    """Listen for the API on host:port and create the proxies of `config` (populate format).
    `zero_copy`: links with no toxic relay with os.splice where the loop allows it."""
    api = ApiServer(ProxyCollection(zero_copy))
    if config:
        try:
            await api.collection.populate(config)
        except ApiError as exc:
            api.collection.close()
            raise ValueError(f"proxy config: {exc.message}") from None

    connections: set[asyncio.Task[Any]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await serve_connection(reader, writer, api.handle)
        except asyncio.CancelledError:
            # Shutdown. Ending normally matters: asyncio's stream server asks a cancelled
            # connection task for its exception and logs the CancelledError as an error.
            pass
        finally:
            connections.discard(task)

    try:
        server = await asyncio.start_server(on_connection, host, port, reuse_address=True)
    except OSError:
        api.collection.close()
        raise
    return RunningServer(api, server, connections)


@dataclass
class ProxyServerHandle:
    """A proxy server running on its own thread; `url` is the API base URL."""

    url: str
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    running: RunningServer
    stopped: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        """Close every proxy and connection, stop the loop and join the thread (idempotent)."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        future = asyncio.run_coroutine_threadsafe(self.running.close(), self.loop)
        try:
            future.result(timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout)

    def __enter__(self) -> ProxyServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def loop_factory(choice: str = "asyncio") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for "uvloop" (ImportError when not installed); None, asyncio's default
    loop, for "asyncio". asyncio is the default: with os.splice it relays a bulk stream at
    about half of uvloop's CPU per GiB here (bench/proxy_bench.py)."""
    if choice != "uvloop":
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def start_background(host: str = "127.0.0.1", port: int = 0,
                     config: list[dict[str, Any]] | None = None,
                     loop: str = "asyncio", zero_copy: bool = True) -> ProxyServerHandle:
    """Run the API and its proxies on a daemon thread (demos, tests).

        >>> handle = start_background()          # doctest: +SKIP
        >>> httpx.get(handle.url + "/version")   # doctest: +SKIP
        >>> handle.stop()                        # doctest: +SKIP
    """
    factory = loop_factory(loop) or asyncio.new_event_loop
    event_loop = factory()
    ready: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(event_loop)
        try:
            ready["server"] = event_loop.run_until_complete(start(host, port, config, zero_copy))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            ready["error"] = exc
            started.set()
            event_loop.close()
            return
        started.set()
        try:
            event_loop.run_forever()
        finally:
            _drain(event_loop)
            event_loop.close()

    thread = threading.Thread(target=run, name="chaosrunner-proxy", daemon=True)
    thread.start()
    started.wait()
    if "error" in ready:
        thread.join()
        raise ready["error"]
    running: RunningServer = ready["server"]
    return ProxyServerHandle(running.url, event_loop, thread, running, threading.Event())


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on a stopped loop and let it finish, so nothing leaks."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(asyncio.sleep(0))

"""What the demo services share: a threaded HTTP server with Prometheus metrics.

Each service is an `App`: a table of routes (path -> function of a `Request`).
`serve()` runs it on a `ThreadingHTTPServer` (one thread per connection, HTTP/1.1
keep-alive), writes the pid file once listening, and exits cleanly on SIGTERM or
SIGINT: it stops accepting, closes the app and removes its pid file.

Metrics (prometheus_client, one registry per process):

    http_requests_total{handler, code}              counter
    http_request_duration_seconds{handler}          histogram

The `job` label is left to the Prometheus scrape config (job names `checkout` and
`payments`): a target that exposes its own `job` label clashes with the scrape
job's and Prometheus would rename it to `exported_job`. `/metrics` and `/healthz`
are not counted, so that scrapes and health checks do not dilute the SLIs.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

# Finer than prometheus_client's defaults at the low end: local calls take ~1 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNCOUNTED = frozenset({"/metrics", "/healthz"})


@dataclass(frozen=True)
class Request:
    """One HTTP request, already read off the socket."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes

    def field(self, name: str) -> str | None:
        """A value from the query string or, failing that, a JSON object body."""
        if name in self.query:
            return self.query[name]
        if not self.body:
            return None
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        value = data.get(name) if isinstance(data, dict) else None
        return str(value) if value is not None else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, payload: Mapping[str, Any]) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode())


RouteFn = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    handler: RouteFn
    methods: frozenset[str] = frozenset({"GET"})


@dataclass
class App:
    """A demo service: its name, routes, metrics, and what to close on exit."""

    name: str
    routes: dict[str, Route]
    metrics: Metrics = field(default_factory=lambda: Metrics())
    on_close: Callable[[], None] | None = None

    def handle(self, request: Request) -> Response:
        if request.path == "/metrics":
            return Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            return Response.json(200, {"status": "ok", "name": self.name, "pid": os.getpid()})
        route = self.routes.get(request.path)
        if route is None:
            return Response.json(404, {"error": f"no such path {request.path}"})
        if request.method not in route.methods:
            return Response.json(405, {"error": f"{request.method} not allowed on {request.path}"})
        return route.handler(request)

    def handler_label(self, path: str) -> str:
        # Unknown paths share one label so a scanner cannot blow up the series count.
        return path if path in self.routes or path in UNCOUNTED else "other"


class Metrics:
    """The two standard HTTP metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("http_requests_total", "HTTP requests served",
                                ["handler", "code"], registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds",
                                  "Time to serve an HTTP request", ["handler"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, handler: str, code: int, seconds: float) -> None:
        self.requests.labels(handler=handler, code=str(code)).inc()
        self.duration.labels(handler=handler).observe(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops connections when a load generator opens many at once.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections each hold a thread; let them go after a while.
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the second
        # waits for the peer's delayed ACK, which adds ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        app = self.server.app
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            response = Response.json(400, {"error": "bad Content-Length"})
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, url.path, dict(parse_qsl(url.query)), body)
            response = _safe_handle(app, request)
        self._send(response)
        if url.path not in UNCOUNTED:
            app.metrics.observe(app.handler_label(url.path), response.status,
                                time.perf_counter() - started)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request would cost more than the request at 200 req/s.
        return


def _safe_handle(app: App, request: Request) -> Response:
    try:
        return app.handle(request)
    except Exception as exc:  # noqa: BLE001 - a bug in a route must answer 500, not drop the connection
        print(f"{app.name}: error on {request.method} {request.path}: {exc!r}",
              file=sys.stderr, flush=True)
        return Response.json(500, {"error": type(exc).__name__})


def serve(app: App, host: str, port: int, pid_file: Path | None = None) -> int:
    """Run `app` until SIGTERM/SIGINT; returns the process exit code.

    The signals are blocked in every thread and taken with `sigwait` in the main
    thread, so no handler runs at an awkward moment and shutdown is orderly.
    """
    # The *_created series only add noise to the demo's scrapes.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        server = _Server((host, port), app)
    except OSError as exc:
        if app.on_close is not None:
            app.on_close()
        print(f"{app.name}: cannot listen on {host}:{port}: {exc.strerror}; "
              "stop what uses the port or choose another with --port", file=sys.stderr)
        return 2
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name=f"{app.name}-accept", daemon=True)
    thread.start()
    if pid_file is not None:
        write_pid_file(pid_file)
    print(f"{app.name}: listening on http://{host}:{server.server_address[1]} "
          f"(pid {os.getpid()})", file=sys.stderr, flush=True)
    try:
        received = signal.sigwait(stop_signals)
        print(f"{app.name}: {signal.Signals(received).name}, shutting down",
              file=sys.stderr, flush=True)
    finally:
        server.shutdown()
        server.server_close()
        if app.on_close is not None:
            app.on_close()
        if pid_file is not None:
            remove_pid_file(pid_file)
    return 0


def write_pid_file(path: Path) -> None:
    """Write our pid atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{os.getpid()}\n")
    os.replace(temporary, path)


def remove_pid_file(path: Path) -> None:
    """Remove the pid file only if it is still ours (a successor may have replaced it)."""
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except (FileNotFoundError, ValueError):
        pass


class Journal:
    """An append-only file of lines, one write(2) per line.

    O_APPEND writes of a short line are atomic across threads, and reach the page
    cache before the call returns, so the lines survive a SIGKILL of the process.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, *fields: str) -> None:
        os.write(self._fd, (" ".join(fields) + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def digest(ids: list[str]) -> str:
    """An order-independent fingerprint of a set of ids (sha256 of the sorted ids)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()

"""A real HTTP server that counts the requests it gets, for the load tests.

    with counting_server() as server:
        server.url, server.count, server.rate_over(10.0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class CountingServer:
    url: str
    count: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, method: str, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            self.count += 1
            self.methods[method] = self.methods.get(method, 0) + 1
            if len(self.bodies) < 50:
                self.bodies.append(body)
                self.headers.append(headers)

    def busy(self, window: float = 0.5) -> bool:
        """Did any request arrive within `window` seconds?"""
        before = self.count
        time.sleep(window)
        return self.count > before

    def rate_over(self, seconds: float) -> float:
        """Requests per second arriving over the next `seconds`."""
        before, start = self.count, time.monotonic()
        time.sleep(seconds)
        return (self.count - before) / (time.monotonic() - start)


@contextmanager
def counting_server() -> Iterator[CountingServer]:
    state = CountingServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.hit(self.command, body, dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

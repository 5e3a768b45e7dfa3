"""A plain stdlib HTTP/1.1 server for the HTTP-toxic tests, and a raw-socket response reader."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

BLOCK = bytes(range(256)) * 256  # 64 KiB, every byte value


def stream_digest(size: int) -> str:
    """sha256 of the first `size` bytes of the repeating BLOCK pattern the server sends."""
    digest = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


class Handler(BaseHTTPRequestHandler):
    """GET /hello, POST /pay (echoes the body size), GET /chunked, GET /bytes?n=N."""

    protocol_version = "HTTP/1.1"
    server: PlainServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _note(self) -> None:
        with self.server.lock:
            self.server.seen.append((self.command, self.path, self.client_address[1]))

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._note()
        url = urlsplit(self.path)
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path == "/bytes":
            size = int(parse_qs(url.query)["n"][0])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            full, rest = divmod(size, len(BLOCK))
            for _ in range(full):
                self.wfile.write(BLOCK)
            self.wfile.write(BLOCK[:rest])
            return
        self._reply(200, b"hello " + url.path.encode())

    def do_POST(self) -> None:
        self._note()
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";")[0], 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                size += len(self.rfile.read(length))
                self.rfile.read(2)
        else:
            size = len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self._reply(200, b"got %d" % size)


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, int]] = []
        self.address = f"127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # resets are what some tests inject

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.seen]

    def client_ports(self) -> set[int]:
        with self.lock:
            return {port for _, _, port in self.seen}


@contextlib.contextmanager
def raw_upstream(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP upstream that hands each connection to `answer`, one at a time: its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def run() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                answer(conn)

    threading.Thread(target=run, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def read_responses(sock: socket.socket, methods: list[bytes]) -> list[tuple[int, bytes]]:
    """Read one response per request method from a raw socket, in order (pipelining)."""
    conn = h11.Connection(h11.CLIENT)
    out: list[tuple[int, bytes]] = []
    for method in methods:
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        status, body = 0, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("the proxy closed the connection mid-response")
        out.append((status, bytes(body)))
        conn.start_next_cycle()
    return out

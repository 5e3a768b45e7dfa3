"""Real TCP peers and small socket helpers shared by the proxy and driver tests."""

from __future__ import annotations

import socket
import threading

import httpx


class EchoServer:
    """A threaded TCP echo server on 127.0.0.1; half-close aware (echoes, then closes)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        with self.lock:
            self.closed = True
            conns, self.conns = self.conns, []
        self.sock.close()
        for conn in conns:
            conn.close()


def make_proxy(api: httpx.Client, name: str, upstream: str, **extra: object) -> dict[str, object]:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                          "upstream": upstream, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def port_of(proxy: dict[str, object]) -> int:
    return int(str(proxy["listen"]).rsplit(":", 1)[1])


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = sock.recv(min(65536, size - len(data)))
        if not part:
            break
        data += part
    return bytes(data)


def recv_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while True:
        part = sock.recv(65536)
        if not part:
            return bytes(data)
        data += part

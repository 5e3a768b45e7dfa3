"""Real processes and servers on 127.0.0.1 for integration tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@contextlib.contextmanager
def machine_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """`path` flocked for this test session alone, for `what` (fixed ports, say): another
    session on the machine (a second checkout's `make test`) waits for it, bounded."""
    with path.open("a") as lock:
        assert wait_until(lambda: _try_lock(lock.fileno()), timeout=timeout, step=0.5), \
            f"another test session held {path} ({what}) for {timeout:g}s"
        yield


def listening(port: int) -> bool:
    """Something listens on 127.0.0.1:`port`. (A bind test would also fail on the TIME_WAIT
    that a server's own close leaves behind, which is no process left running.)"""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def demo_fixed_ports() -> list[int]:
    """The ports `chaosrunner demo shop` listens on: the shop, the proxy API, the four
    payments replicas and their proxies."""
    from chaosrunner.cli.demo import PROXY_API_PORT, SHOP_PORT

    return [SHOP_PORT, PROXY_API_PORT, *range(SHOP_PORT + 1, SHOP_PORT + 5),
            *range(SHOP_PORT + 11, SHOP_PORT + 15)]


DEMO_PORTS_LOCK = Path("/tmp/chaosrunner-demo-ports.lock")


def demo_ports_held() -> contextlib.AbstractContextManager[None]:
    """The fixed ports of `chaosrunner demo shop` for this test session alone (tests that
    start the demo, or take one of its ports)."""
    return machine_lock(DEMO_PORTS_LOCK, 600, "the demo's fixed ports")


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code < 500
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def http_server(tmp_path: Path, tag: str = "target") -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`python -m http.server` on a free port, with a pid file; killed at the end."""
    port = free_port()
    root = tmp_path / f"www-{tag}"
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text("ok")
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = tmp_path / f"{tag}.pid"
    pid_file.write_text(str(proc.pid))
    url = f"http://127.0.0.1:{port}/"
    try:
        assert wait_until(lambda: answers(url)), "test http server did not start"
        yield url, proc, pid_file
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def sleeping_process(pid_file: Path, seconds: int = 600) -> Iterator[subprocess.Popen[bytes]]:
    """A process that sleeps, its pid in `pid_file` (a `process.pause` target); woken
    (SIGCONT) and killed at the end."""
    proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    pid_file.write_text(str(proc.pid))
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


def proc_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[0]


def chaosrunner(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "chaosrunner", *args], cwd=cwd or REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@dataclass(frozen=True)
class Proxy:
    """One proxy of a `chaosrunner proxy` (see `embedded_proxy`)."""

    api: str
    name: str

    def target(self) -> str:
        """The proxy as an experiment's fault target (a YAML flow mapping)."""
        return f"{{proxy: {self.name}, api: '{self.api}'}}"

    def toxics(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(
            f"{self.api}/proxies/{self.name}/toxics", timeout=10).json()
        return found


@contextlib.contextmanager
def embedded_proxy(prefix: str = "test") -> Iterator[Proxy]:
    """`chaosrunner proxy` in this process, with one proxy (to a closed port) named
    `<prefix>-<random>`; stopped afterwards."""
    from chaosrunner.proxy.server import start_background

    handle = start_background()
    try:
        proxy = Proxy(handle.url, f"{prefix}-{uuid.uuid4().hex[:8]}")
        response = httpx.post(f"{proxy.api}/proxies", timeout=10, json={
            "name": proxy.name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
        assert response.status_code == 201, response.text
        yield proxy
    finally:
        handle.stop()

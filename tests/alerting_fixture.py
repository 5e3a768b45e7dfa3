"""Debian's Pushgateway and Alertmanager for tests, on free loopback ports.

    with run_pushgateway(tmp_path) as gateway: ... gateway.url ...
    with run_alertmanager(tmp_path) as manager: ... manager.url ...

Each keeps its state in a temporary directory and is stopped afterwards (SIGTERM, then
SIGKILL). They answer some time after start: the context managers poll until the HTTP API
does, bounded, and never sleep a fixed time. `need(...)` skips, or fails under
CHAOSRUNNER_REQUIRE, when the binary is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from helpers import free_port
from prometheus_fixture import stop
from services import need

PUSHGATEWAY = "prometheus-pushgateway"
ALERTMANAGER = "prometheus-alertmanager"


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return str(response.read().decode())


def _wait_ready(service: Service, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.url} exited ({service.process.returncode}):\n"
                               f"{service.log_path.read_text()[-2000:]}")
        try:
            service.get(path)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise TimeoutError(f"{service.url}{path} did not answer within {timeout:g}s")


@contextmanager
def _running(args: list[str], directory: Path, port: int, ready: str) -> Iterator[Service]:
    log_path = directory / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    service = Service(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(service, ready)
        yield service
    finally:
        stop(process)


@contextmanager
def run_pushgateway(directory: Path) -> Iterator[Service]:
    need("pushgateway", shutil.which(PUSHGATEWAY) is not None,
         "install Debian's package: apt-get install -y prometheus-pushgateway")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with _running([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}",
                   f"--persistence.file={directory / 'pushgateway.data'}",
                   "--log.level=warn"], directory, port, "/-/ready") as service:
        yield service


@contextmanager
def run_alertmanager(directory: Path) -> Iterator[Service]:
    """Alertmanager with one do-nothing receiver, no clustering, alerts grouped at once."""
    need("alertmanager", shutil.which(ALERTMANAGER) is not None,
         "install Debian's package: apt-get install -y prometheus-alertmanager")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "alertmanager.yml"
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "nobody", "group_wait": "0s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "nobody"}]}))
    port = free_port()
    with _running([ALERTMANAGER, f"--config.file={config}",
                   f"--storage.path={directory / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                   "--log.level=warn"], directory, port, "/-/ready") as service:
        yield service

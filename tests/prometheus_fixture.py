"""A real Prometheus server for tests: Debian's `prometheus` binary on 127.0.0.1.

    with run_prometheus(tmp_path, {"shop": ["127.0.0.1:8080"]}) as prom:
        prom.wait_for("up{job='shop'} == 1")
        ... prom.url ...

Scrapes every second (rules evaluated every second too), keeps its TSDB in a temporary
directory and is stopped (SIGTERM, then SIGKILL) afterwards. Prometheus gives its first
data some seconds after start: `wait_for` polls, it never sleeps a fixed time.
The pytest fixture `prometheus` (a factory) skips, or fails under
CHAOSRUNNER_REQUIRE=prometheus, when the binary is missing.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import free_port
from services import need

BINARY = "prometheus"


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    basic_auth: tuple[str, str] | None = None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Result of an instant query (empty on any error: for polling)."""
        params = urllib.parse.urlencode({"query": promql})
        request = urllib.request.Request(f"{self.url}/api/v1/query?{params}")
        if self.basic_auth is not None:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                body = json.load(resp)
        except (OSError, ValueError):
            return []
        result = body.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []

    def wait_for(self, promql: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll until `promql` returns a non-empty result; its result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n"
                                   f"{self.log_path.read_text()[-2000:]}")
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.25)
        raise TimeoutError(f"prometheus at {self.url} gave no result for {promql!r} "
                           f"within {timeout:g}s")


def write_config(directory: Path, targets: Mapping[str, Sequence[str]],
                 rules: Sequence[Mapping[str, Any]] = (),
                 alertmanagers: Sequence[str] = (),
                 rule_files: Sequence[Path] = ()) -> Path:
    """prometheus.yml scraping `targets` ({job: ["127.0.0.1:PORT", ...]}) every second."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "scrape_timeout": "900ms"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(addrs)}]}
                           for job, addrs in targets.items()],
    }
    if rules:
        rules_path = directory / "rules.yml"
        rules_path.write_text(yaml.safe_dump({"groups": [{"name": "test", "interval": "1s",
                                                          "rules": list(rules)}]}))
        config["rule_files"] = [str(rules_path)]
    if alertmanagers:  # "127.0.0.1:PORT" of Alertmanagers that get the firing alerts
        config["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": list(alertmanagers)}]}]}
    if rule_files:
        config["rule_files"] = [*config.get("rule_files", []), *map(str, rule_files)]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def run_prometheus(directory: Path, targets: Mapping[str, Sequence[str]],
                   rules: Sequence[Mapping[str, Any]] = (),
                   extra_args: Sequence[str] = (),
                   basic_auth: tuple[str, str, str] | None = None,
                   alertmanagers: Sequence[str] = (),
                   retention: str = "1d",
                   rule_files: Sequence[Path] = ()) -> Iterator[PrometheusServer]:
    """Start Prometheus on a free loopback port; stop it on exit.

    `basic_auth` is (user, password, bcrypt hash of the password): the API then needs it.
    The TSDB is `directory/data`: blocks put there beforehand (a backfill) are served.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, targets, rules, alertmanagers, rule_files)
    extra_args = list(extra_args)
    if basic_auth is not None:
        web_config = directory / "web.yml"
        web_config.write_text(yaml.safe_dump({"basic_auth_users": {basic_auth[0]: basic_auth[2]}}))
        extra_args.append(f"--web.config.file={web_config}")
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.retention.time={retention}", "--log.level=warn", *extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", process=process,
                              log_path=log_path,
                              basic_auth=None if basic_auth is None else basic_auth[:2])
    try:
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


PrometheusFactory = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Factory: `prometheus({"job": ["127.0.0.1:PORT"]}, rules=[...])` -> a started server.

    Waits until every job has been scraped once (`up == 1`)."""
    need("prometheus", shutil.which(BINARY) is not None,
         "install Debian's package: apt-get install -y prometheus")
    stack: list[Any] = []

    def start(targets: Mapping[str, Sequence[str]],
              rules: Sequence[Mapping[str, Any]] = (),
              extra_args: Sequence[str] = (),
              basic_auth: tuple[str, str, str] | None = None,
              alertmanagers: Sequence[str] = ()) -> PrometheusServer:
        manager = run_prometheus(tmp_path / f"prometheus-{len(stack)}", targets, rules,
                                 extra_args, basic_auth, alertmanagers)
        server = manager.__enter__()
        stack.append(manager)
        for job in targets:
            server.wait_for(f'up{{job="{job}"}} == 1')
        return server

    try:
        yield start
    finally:
        for manager in reversed(stack):
            manager.__exit__(None, None, None)

"""`chaosrunner proxy` as a user runs it: a real process, a config file, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import free_port
from proxyhelp import EchoServer, connect, recv_exact

ENTRY = "import sys; from chaosrunner.cli.main import main; sys.exit(main(sys.argv[1:]))"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ENTRY, "proxy", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_api(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"proxy exited early: {proc.communicate()}")
        try:
            httpx.get(f"{url}/version", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("proxy API did not come up")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_config_and_stops_on_signal(tmp_path: Path, echo: EchoServer,
                                           signum: signal.Signals) -> None:
    listen = free_port()
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "payments", "listen": f"127.0.0.1:{listen}",
                                   "upstream": echo.address}]))
    api_port = free_port()
    proc = start("--port", str(api_port), "--config", str(config))
    try:
        wait_api(f"http://127.0.0.1:{api_port}", proc)
        proxies = httpx.get(f"http://127.0.0.1:{api_port}/proxies", timeout=5).json()
        assert proxies["payments"]["listen"] == f"127.0.0.1:{listen}"
        with connect(listen) as sock:
            sock.sendall(b"pay")
            assert recv_exact(sock, 3) == b"pay"
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "API on http://127.0.0.1:" in out and "stopped" in out


@pytest.mark.parametrize("content", ["not json", '{"name": "x"}',
                                     '[{"name": "x", "listen": "127.0.0.1:0"}]'])
def test_bad_config_is_invalid_input(tmp_path: Path, content: str) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(content)
    proc = start("--port", "0", "--config", str(config))
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 4
    assert str(config) in err or "proxy config" in err
    assert "Traceback" not in err


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line")


def test_raises_its_open_files_soft_limit_to_the_hard_limit() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.skip(f"the hard limit here ({hard}) leaves nothing to raise")
    api_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "proxy", "--port", str(api_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    try:
        wait_api(f"http://127.0.0.1:{api_port}", proc)
        assert _open_files_limits(proc.pid) == (hard, hard)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)

"""Issue 12.15: `chaosrunner demo shop` starts the demo shop and keeps it running, so that
the README's next command (`chaosrunner plan experiments/instance-failure.yaml`) finds its
targets; Ctrl-C or SIGTERM stops everything it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import demo_fixed_ports, demo_ports_held, listening, wait_until

from chaosrunner.cli.demo import PROXY_API_PORT, REPO_ROOT, SHOP_PORT

PORTS = demo_fixed_ports()


@pytest.fixture(autouse=True)
def demo_ports() -> Iterator[None]:
    """The demo's fixed ports for this test session alone: another session on the machine
    running these tests waits, instead of skipping (ports in use) or failing (its demo
    cannot bind, or this port-in-use test took its proxy port)."""
    with demo_ports_held():
        yield


def checkout_up() -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{SHOP_PORT}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_demo_shop_keeps_the_shop_for_the_next_command(tmp_path: Path,
                                                       stop: signal.Signals) -> None:
    if any(listening(port) for port in PORTS):
        pytest.skip("the demo's fixed ports are in use on this machine")
    demo = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner", "demo", "shop", "--state-dir",
         str(tmp_path / "state")], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_until(lambda: checkout_up() or demo.poll() is not None, timeout=60,
                          step=0.1), "the shop did not answer within 60s"
        assert demo.poll() is None, demo.communicate()[0]
        plan = subprocess.run(
            [sys.executable, "-m", "chaosrunner", "plan", "experiments/instance-failure.yaml",
             "--output", "json", "--state-dir", str(tmp_path / "plan-state")],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "matches nothing" not in plan.stdout + plan.stderr
        [target] = json.loads(plan.stdout)["faults"][0]["targets"]
        assert "payments-" in json.dumps(target)
        assert demo.poll() is None  # still up after the command
        demo.send_signal(stop)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.kill(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[stop]
    assert "chaosrunner plan experiments/instance-failure.yaml" in output
    assert wait_until(lambda: not any(listening(port) for port in PORTS), timeout=60,
                      step=0.1), "a port of the demo was still in use after 60s"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Another demo (or anything) on the demo's ports: one line saying so, exit 4, no
    traceback, nothing left running."""
    from chaosrunner.cli.main import main

    with socket.socket() as taken:
        if not listening(PROXY_API_PORT):
            taken.bind(("127.0.0.1", PROXY_API_PORT))
            taken.listen()
        assert main(["demo", "shop", "--state-dir", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err and "in use" in err, err

"""The demo's system: one shop behind per-replica proxies serves both shipped experiments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import demo_fixed_ports, demo_ports_held, listening

from chaosrunner.cli.demo import EXPERIMENTS, PROXY_API_PORT, REPO_ROOT, SHOP_PORT, demo_system
from chaosrunner.cli.main import main


@pytest.fixture(autouse=True)
def demo_ports() -> Iterator[None]:
    """The demo's fixed ports for this test session alone: another session running these
    tests waits, instead of skipping (ports in use) or failing (the ports taken mid-test)."""
    with demo_ports_held():
        yield


def test_demo_system_serves_both_experiments_and_stops_everything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = demo_fixed_ports()
    if any(listening(p) for p in ports):
        pytest.skip("the demo's fixed ports are in use on this machine")
    with demo_system(tmp_path):
        assert httpx.post(f"http://127.0.0.1:{SHOP_PORT}/checkout", timeout=5).status_code == 200
        proxies = httpx.get(f"http://127.0.0.1:{PROXY_API_PORT}/proxies", timeout=5).json()
        assert sorted(proxies) == [f"payments-{i}" for i in range(1, 5)]
        capsys.readouterr()
        for file in EXPERIMENTS:
            assert main(["plan", str(REPO_ROOT / file), "--output", "json",
                         "--state-dir", str(tmp_path / "state")]) == 0
            plan = json.loads(capsys.readouterr().out)
            assert plan["reason"] is None, plan
            targets = plan["faults"][0]["targets"]
            assert len(targets) == (1 if "instance" in file else 4)
    assert not any(listening(p) for p in ports)

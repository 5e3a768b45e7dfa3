"""The shipped payments-errors experiment end to end: HTTP 503s from the proxy in front of
every payments replica; checkout's retries hold the SLO and payments-1's breaker opens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from demo_support import REPLICAS, free_base_port, shop_tag

from chaosrunner.cli.demo import EXPERIMENTS, REPO_ROOT
from chaosrunner.demo.shop import Shop
from chaosrunner.proxy.server import start_background

EXPERIMENT = REPO_ROOT / "experiments" / "payments-errors.yaml"


def _files(tmp_path: Path, api: str, checkout_port: int) -> Path:
    """The shipped files, pointed at this test's shop and proxy instead of the demo ports."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "steady-states").mkdir()
    steady = (REPO_ROOT / "steady-states" / "demo.yaml").read_text()
    (tmp_path / "steady-states" / "demo.yaml").write_text(
        steady.replace("127.0.0.1:8080", f"127.0.0.1:{checkout_port}"))
    experiment = tmp_path / "experiments" / EXPERIMENT.name
    experiment.write_text(EXPERIMENT.read_text().replace("http://127.0.0.1:8474", api))
    return experiment


def test_the_demo_runs_it() -> None:
    assert "experiments/payments-errors.yaml" in EXPERIMENTS


@pytest.mark.slow
def test_payments_errors_holds_the_slo_and_opens_the_breaker(tmp_path: Path) -> None:
    base = free_base_port()
    proxy = start_background()
    shop: Shop | None = None
    try:
        listens = {}
        for i in range(1, REPLICAS + 1):
            created = httpx.post(f"{proxy.url}/proxies", json={
                "name": f"payments-{i}", "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{base + i}"}).json()
            listens[f"payments-{i}"] = f"http://{created['listen']}"
        shop = Shop.start(base_port=base, replicas=REPLICAS, state_dir=tmp_path / "shop",
                          shop_name=shop_tag(),
                          checkout_args=["--payments", ",".join(listens.values()),
                                         "--timeout-ms", "1500"])
        experiment = _files(tmp_path, proxy.url, base)
        run = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner", "run", str(experiment), "--output", "json",
             "--state-dir", str(tmp_path / "state")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen_open = False
        while run.poll() is None:
            breakers = httpx.get(f"http://127.0.0.1:{base}/breakers", timeout=5).json()
            seen_open |= any(r["url"] == listens["payments-1"] and r["state"] == "open"
                             for r in breakers["replicas"])
            time.sleep(0.2)
        out, err = run.communicate()
        assert run.returncode == 0, (out[-3000:], err[-3000:])
        report = json.loads(out)
        assert report["verdict"] == "passed", report
        assert seen_open, "payments-1's circuit breaker never opened"
        toxics = httpx.get(f"{proxy.url}/proxies").json()
        assert all(p["toxics"] == [] for p in toxics.values())  # both faults taken back
        metrics = httpx.get(f"http://127.0.0.1:{base}/metrics").text
        assert 'outcome="skipped"' in metrics  # calls the open breaker spared payments-1
    finally:
        if shop is not None:
            shop.stop()
        proxy.stop()


def test_the_demo_can_run_just_this_one(capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.demo import selected
    from chaosrunner.cli.main import main

    assert selected(["payments-errors"]) == ["experiments/payments-errors.yaml"]
    assert selected([]) == list(EXPERIMENTS)
    assert main(["demo", "payments-error"]) == 4
    assert "the demo has: instance-failure, network-latency, payments-errors" in \
        capsys.readouterr().err

"""The breaking-point search end to end: the demo shop, a real Prometheus, real Locust."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_fixture import run_prometheus
from services import need

from chaosrunner.cli.main import main
from chaosrunner.demo.shop import Shop
from chaosrunner.load.driver import load_processes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
REPLICAS = 2


def _free_base() -> int:
    import socket

    for _ in range(200):
        base = random.randrange(20000, 40000)
        try:
            for port in range(base, base + REPLICAS + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports")


def _fast_copy(tmp_path: Path) -> Path:
    """The shipped capacity experiment with shorter steps (same shape, same guard)."""
    data = yaml.safe_load((ROOT / "experiments" / "checkout-capacity.yaml").read_text())
    data["steady_state"]["from"] = str(ROOT / "steady-states" / "demo-capacity.yaml")
    data["steady_state"]["after"] = "10s"
    data["search"].update({"start": "100/s", "factor": 2, "step": "5s", "ceiling": "3200/s"})
    data["duration"] = "30s"
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_search_finds_the_demo_checkouts_breaking_point(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("prometheus", shutil.which("prometheus") is not None, "apt-get install -y prometheus")
    base = _free_base()
    shop = Shop.start(base_port=base, replicas=REPLICAS, state_dir=tmp_path / "shop",
                      shop_name=f"loadtest{random.randrange(1 << 30):x}")
    with shop, run_prometheus(tmp_path / "prom", {"checkout": [f"127.0.0.1:{base}"]}) as prom:
        with httpx.Client(timeout=5.0) as client:  # production traffic before the run
            # A series is born with its first request: Prometheus must see it before the
            # traffic it is to rate.
            assert client.post(shop.checkout_endpoint).status_code == 200
            prom.wait_for('http_requests_total{handler="/checkout"}')
            for _ in range(30):
                assert client.post(shop.checkout_endpoint).status_code == 200
        prom.wait_for('sum(rate(http_requests_total{handler="/checkout"}[1m])) > 0')
        report_dir = tmp_path / "report"
        state = str(tmp_path / "state")
        code = main(["run", str(_fast_copy(tmp_path)), "--var", f"SHOP=http://127.0.0.1:{base}",
                     "--var", f"PROM={prom.url}", "--report-dir", str(report_dir),
                     "--state-dir", state])
        report = json.loads((report_dir / "report.json").read_text())
        # The planner takes the breaking point from the run's history.
        capsys.readouterr()
        assert main(["capacity", str(ROOT / "steady-states" / "demo-capacity.yaml"),
                     "--var", f"PROM={prom.url}", "--state-dir", state, "--usage",
                     'sum(rate(http_requests_total{handler="/checkout"}[1m]))',
                     "--growth", "10%/month", "--output", "json"]) == 0
        plan = json.loads(capsys.readouterr().out)
    assert code == 2 and report["verdict"] == "aborted", report["reason"]
    assert report["abort"]["slo"] == "checkout_probe"
    search = report["search"]
    assert search["broke"] is not None and search["broke"] in search["rates"]
    assert search["held"] is None or search["held"] < search["broke"]
    assert [s["held"] for s in search["steps"]][-1] is False
    assert 0 <= search["stop_seconds"] < 5.0  # the load stops at once
    assert search["stop_seconds"] <= search["step_to_stop_seconds"] < 5.0 + 5.0  # in its step
    assert search["production"] is not None, search["note"]
    assert search["production"] > 0 and search["headroom_factor"] is not None
    [load] = report["faults"]
    assert load["reverted_at"] is not None and not load_processes(load["key"])
    assert "Breaking point" in (report_dir / "report.md").read_text()
    assert "Breaking point" in (report_dir / "report.html").read_text()
    # The planner takes the traffic that really broke it (a saturated step delivers less).
    broke = search["broke_delivered"] or search["broke"]
    assert plan["breaking_point"] == broke
    assert plan["limit"] == pytest.approx(broke * 0.7, rel=1e-3)
    assert plan["current"] > 0 and plan["months_to_limit"] is not None

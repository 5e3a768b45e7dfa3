"""Issue 5's end-to-end: an experiment whose steady state is the seed's SLO file
(steady-states/shop.yaml), run against the real demo shop under a real Prometheus.
A harmless fault passes; a fault that burns the budget too fast aborts and is rolled back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import proc_state
from prometheus_fixture import PrometheusFactory, PrometheusServer
from test_shop_steady_state import _free_run

from chaosrunner.cli.main import main
from chaosrunner.demo.shop import Shop

SHOP_FILE = Path(__file__).parents[2] / "steady-states" / "shop.yaml"

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: {name}
hypothesis: {hypothesis}
steady_state: {{from: "{steady}", slos: [api_availability], before: 3s, after: 4s, interval: 1s}}
duration: 8s
blast_radius: {{max_percent: {percent}}}
faults:
  - name: hit-payments
    action: {action}
    target: {{cmdline_regex: 'chaosrunner\\.demo\\.payments .*--shop {tag}\\b'}}
    select: {select}
success_criteria:
  - api_availability >= 99.9%
abort:
  error_budget: {{slo: api_availability, burn_rate: 14.4, windows: [2s, 4s]}}
"""


@pytest.fixture
def shop_under_prometheus(tmp_path: Path, prometheus: PrometheusFactory
                          ) -> Iterator[tuple[Shop, PrometheusServer, str]]:
    tag = f"t{uuid.uuid4().hex[:8]}"
    shop = Shop.start(base_port=_free_run(5), replicas=4, state_dir=tmp_path / "shop",
                      shop_name=tag)
    stop = threading.Event()

    def traffic() -> None:  # bounded: at most 20/s, ends with the test
        with httpx.Client(timeout=2.0) as client:
            for _ in range(20 * 300):
                if stop.wait(0.05):
                    return
                with contextlib.suppress(httpx.HTTPError):
                    client.post(shop.checkout_endpoint)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        server = prometheus({"checkout": [shop.checkout_url.removeprefix("http://").rstrip("/")]})
        server.wait_for("sum(rate(http_requests_total{job='checkout'}[1m])) > 0")
        yield shop, server, tag
    finally:
        stop.set()
        worker.join(timeout=5)
        shop.stop()


def run_experiment(tmp_path: Path, server: PrometheusServer, **fields: str) -> dict:  # type: ignore[type-arg]
    path = tmp_path / f"{fields['name']}.yaml"
    path.write_text(EXPERIMENT.format(steady=SHOP_FILE, **fields))
    code = main(["run", str(path), "--state-dir", str(tmp_path / "state"),
                 "--report-dir", str(tmp_path / fields["name"]),
                 "--var", f"PROMETHEUS_URL={server.url}", "--output", "json"])
    data = json.loads((tmp_path / fields["name"] / "report.json").read_text())
    assert data["exit_code"] == code
    return data  # type: ignore[no-any-return]


def test_harmless_fault_passes_and_burning_fault_aborts(
        tmp_path: Path, shop_under_prometheus: tuple[Shop, PrometheusServer, str]) -> None:
    shop, server, tag = shop_under_prometheus
    harmless = run_experiment(tmp_path, server, name="lose-one", tag=tag, percent="25%",
                              hypothesis="checkout retries on another replica",
                              action="process.kill", select="{random: 1}")
    assert harmless["verdict"] == "passed", harmless["reason"]
    values = [s["value"] for s in harmless["samples"] if s["phase"] == "faults"]
    assert values and all(v is not None and v >= 0.999 for v in values)

    burning = run_experiment(tmp_path, server, name="freeze-all", tag=tag, percent="100%",
                             hypothesis="checkout survives frozen payments (it does not)",
                             action="process.pause", select="all")
    assert burning["verdict"] == "aborted", burning["reason"]
    assert "burn rate" in burning["abort"]["reason"]
    assert all(proc_state(s.pid) != "T" for s in shop.alive_payments())
    assert len(burning["faults"]) == 3 and all(f["reverted_at"] for f in burning["faults"])

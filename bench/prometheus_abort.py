"""Abort reaction when the SLI comes from Prometheus: scrape interval + query + guard +
rollback, on the real demo shop under a real Prometheus (1 s scrape).

The fault freezes every payments replica (SIGSTOP), so checkout answers 503 after its
timeouts and the seed's `api_availability` (rate over 1m) falls. From each run's journal:
inject -> first bad sample (what Prometheus adds) and first bad sample -> revert (what
chaosrunner adds). Baseline in the same run: the same experiment guarded by the built-in
probe, which sees the errors directly.

    .venv/bin/python bench/prometheus_abort.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import free_port  # noqa: E402
from prometheus_fixture import run_prometheus  # noqa: E402

from chaosrunner.cli.main import main as chaosrunner  # noqa: E402
from chaosrunner.demo.shop import Shop  # noqa: E402

SLI = ("sum(rate(http_requests_total{job='checkout',code!~'5..'}[1m])) / "
       "sum(rate(http_requests_total{job='checkout'}[1m]))")

STEADY_PROBE = """
apiVersion: chaosrunner/v1
kind: SteadyState
name: probe
service_level_objectives:
  api_availability:
    sli: {{http: {{url: "{url}", rate: 20/s, timeout: 1s}}}}
    target: 0.999
"""

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: freeze-{n}
hypothesis: frozen payments are noticed
steady_state: {{from: "{steady}", slos: [api_availability], before: 2s, after: 2s, interval: 1s}}
duration: 60s
blast_radius: {{max_percent: 100%}}
faults:
  - name: freeze
    action: process.pause
    target: {{cmdline_regex: 'chaosrunner\\.demo\\.payments .*--shop {tag}\\b'}}
abort:
  error_budget: {{slo: api_availability, burn_rate: 14.4, windows: [2s, 4s]}}
"""


def measure(work: Path, steady: Path, tag: str, n: int, variables: list[str]) -> dict[str, float]:
    path = work / f"exp-{n}.yaml"
    path.write_text(EXPERIMENT.format(n=n, steady=steady, tag=tag))
    report_dir = work / f"report-{n}"
    with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
        code = chaosrunner(["run", str(path), "--report-dir", str(report_dir), "--state-dir",
                            str(work / "state"), "--output", "json", *variables])
    assert code == 2, f"expected an abort, got exit {code}"
    events = [json.loads(line) for line in (report_dir / "journal.jsonl").read_text().splitlines()]
    inject = next(e["t"] for e in events if e["event"] == "inject")
    bad = next(e["t"] for e in events if e["event"] == "sample" and e["phase"] == "faults"
               and e["slos"]["api_availability"][1] is False)
    revert = max(e["t"] for e in events if e["event"] == "revert")
    return {"inject_to_first_bad": bad - inject, "first_bad_to_revert": revert - bad,
            "inject_to_revert": revert - inject}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tag = f"b{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shop = Shop.start(base_port=free_port(), replicas=2, state_dir=work / "shop",
                          shop_name=tag, die_with_parent=False)
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(timeout=2.0) as client:
                while not stop.wait(0.05):
                    with contextlib.suppress(httpx.HTTPError):
                        client.post(shop.checkout_endpoint)

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        try:
            address = shop.checkout_url.removeprefix("http://").rstrip("/")
            with run_prometheus(work / "prom", {"checkout": [address]}) as prom:
                prom.wait_for("sum(rate(http_requests_total{job='checkout'}[1m])) > 0")
                probe_steady = work / "probe.yaml"
                probe_steady.write_text(STEADY_PROBE.format(url=shop.checkout_endpoint))
                for label, steady, extra in (
                        ("Prometheus (seed SLO, 1 s scrape)", ROOT / "steady-states/shop.yaml",
                         ["--var", f"PROMETHEUS_URL={prom.url}"]),
                        ("built-in probe (baseline)", probe_steady, [])):
                    rows = []
                    for i in range(args.runs):
                        # rate(...[1m]) remembers the last run's errors for a minute
                        prom.wait_for(f"({SLI}) >= 0.999", timeout=120)
                        rows.append(measure(work, steady, tag, i + (0 if extra else 100), extra))
                    print(f"\n{label}: medians over {args.runs} runs")
                    for key in rows[0]:
                        values = [r[key] for r in rows]
                        print(f"  {key:22} {statistics.median(values):6.2f}s  "
                              f"(min {min(values):.2f}, max {max(values):.2f})")
        finally:
            stop.set()
            worker.join(timeout=5)
            shop.stop()


if __name__ == "__main__":
    main()

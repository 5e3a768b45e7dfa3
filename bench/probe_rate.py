"""Probe traffic: the largest rate one probe sustains against the demo service, with
latency figures checked against an external client (wrk, Debian) in the same run.

For each asked rate the probe runs alone for a few seconds; we print the achieved rate of
completed requests, shed/failed requests and the p50/p99 the probe measured. Then wrk
(2 connections, closed loop) measures the same endpoint: its p50 is the honest service
latency at low load, and its throughput the service's own ceiling.

    .venv/bin/python bench/probe_rate.py [--seconds 5] [--rates 50,100,200,400,800]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import free_port

from chaosrunner.demo.shop import Shop
from chaosrunner.slo.latency import latency_stat
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.http_probe import HttpProbeSource
from chaosrunner.spec.models import SLO


async def probe_at(url: str, rate: float, seconds: float) -> dict[str, float]:
    slo = SLO.model_validate({"sli": {"http": {"url": url, "rate": rate, "timeout": "1s"}},
                              "target": "99%"})
    source = HttpProbeSource("bench", slo, None, SourceContext())
    await source.start()
    await asyncio.sleep(0.5)
    await source.read(0.5)  # warm-up: connections are opened
    began = time.monotonic()
    await asyncio.sleep(seconds)
    reading = await source.read(seconds)
    elapsed = time.monotonic() - began
    await source.close()
    latencies = reading.latencies or (float("nan"),)
    return {"asked": rate, "done_per_s": (reading.total or 0) / elapsed,
            "good_share": reading.stats.get("availability", 0.0),
            "shed": float(source.traffic.shed),
            "p50_ms": latency_stat(latencies, "p50") * 1000,
            "p99_ms": latency_stat(latencies, "p99") * 1000}


def wrk(url: str, seconds: float) -> str:
    if shutil.which("wrk") is None:
        return "wrk not installed (apt-get install -y wrk)"
    out = subprocess.run(["wrk", "-t1", "-c2", f"-d{int(seconds)}s", "--latency", url],
                         capture_output=True, text=True, check=False).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return (f"wrk -c2: {rps.group(1) if rps else '?'} req/s, p50 {p50.group(1) if p50 else '?'},"
            f" p99 {p99.group(1) if p99 else '?'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="50,100,200,400,800")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = free_port()
        with Shop.start(base_port=base, replicas=2, state_dir=tmp, shop_name="bench",
                        die_with_parent=False) as shop:
            for name, url in (("payments /pay", f"{shop.payments_urls[0]}/pay"),
                              ("checkout /checkout", shop.checkout_endpoint)):
                print(f"\n{name}  ({url})")
                print("  " + wrk(url, args.seconds))
                for rate in (float(r) for r in args.rates.split(",")):
                    r = asyncio.run(probe_at(url, rate, args.seconds))
                    print(f"  probe asked {rate:6.0f}/s: completed {r['done_per_s']:7.1f}/s, "
                          f"good {r['good_share']:.3f}, shed {r['shed']:.0f}, "
                          f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()

"""load.http: how exactly Locust delivers the asked rate, what it costs the runner, and how
fast a breaking-point search stops the load.

1. accuracy: asked vs delivered rate at 100, 500, 1000/s from one Locust process, and at
   the same rates from a master with 2 local workers. "Delivered" is counted at the
   target: nginx (Debian) with stub_status, answering 200 to everything.
2. the runner under full load: a real `chaosrunner run` of a 1000/s load.http fault with
   an http probe SLI sampled every 1s; the fault phase's sampling intervals (mean, worst)
   and the runner's own CPU seconds (getrusage of this process, Locust excluded).
3. time from the breaking step to the load's stop: the demo shop's capacity experiment
   with short steps; `search.stop_seconds` (guard abort -> Locust's last status line).

    .venv/bin/python bench/load_bench.py [--seconds 15] [--rates 100,500,1000] [--skip-search]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import free_port, wait_until

from chaosrunner.cli.main import main
from chaosrunner.demo.shop import Shop
from chaosrunner.load.driver import LoadDriver, read_status
from chaosrunner.load.settings import users_for

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location = /nginx_status {{ stub_status; }}
    location / {{ return 200 "ok"; }}
  }}
}}
"""


def start_nginx(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=directory, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(directory / "nginx.conf"), "-p", str(directory)],
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            served(url)
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


def served(url: str) -> int:
    with urllib.request.urlopen(f"{url}/nginx_status", timeout=5) as resp:
        return int(resp.read().decode().split("\n")[2].split()[2])


def accuracy(url: str, rate: float, workers: int, seconds: float) -> dict[str, float]:
    driver = LoadDriver()
    extra = {"workers": workers} if workers else {}
    params = driver.validate("load.http", {"url": url}, {"rate": rate, "urls": ["/x"], **extra})
    [instance] = driver.resolve("load.http", {"url": url})
    handle = driver.inject(instance, "load.http", params, f"bench-{os.getpid()}.{rate}.{workers}")
    users, status = users_for(params), Path(str(handle.data["status"]))
    try:
        # Measured once Locust says every user runs (a busy machine spawns them slower).
        if not wait_until(lambda: any(x.get("users") == users for x in read_status(status)),
                          timeout=60, step=0.1):
            raise RuntimeError(f"Locust did not spawn {users} users within 60s")
        before, start = served(url), time.monotonic()
        time.sleep(seconds)
        count, span = served(url) - before, time.monotonic() - start
    finally:
        driver.revert(handle)
    delivered = count / span
    return {"asked": rate, "workers": workers, "delivered": round(delivered, 1),
            "error_percent": round((delivered - rate) / rate * 100, 1)}


def runner_under_load(url: str, rate: float, seconds: int, tmp: Path) -> dict[str, float]:
    steady = tmp / "steady.yaml"
    steady.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "bench",
        "service_level_objectives": {"probe": {
            "sli": {"http": {"url": f"{url}/probe", "rate": "10/s"}, "stat": "availability"},
            "target": "99%"}}}))
    experiment = tmp / "exp.yaml"
    experiment.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "Experiment", "name": "bench-load",
        "hypothesis": "the runner samples on time under load",
        "steady_state": {"from": str(steady), "before": "2s", "after": "2s", "interval": "1s"},
        "duration": f"{seconds}s",
        "faults": [{"name": "load", "action": "load.http", "target": {"url": url},
                    "with": {"rate": rate, "urls": ["/x"]}}]}))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    code = main(["run", str(experiment), "--report-dir", str(tmp / "report"),
                 "--state-dir", str(tmp / "state")])
    after = resource.getrusage(resource.RUSAGE_SELF)
    report = json.loads((tmp / "report" / "report.json").read_text())
    times = [s["t"] for s in report["samples"] if s["phase"] == "faults"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {"exit_code": code, "samples": len(times), "interval_mean": round(sum(gaps) / len(gaps), 3),
            "interval_max": round(max(gaps), 3), "interval_min": round(min(gaps), 3),
            "runner_cpu_seconds": round(cpu, 2),
            "runner_cpu_percent": round(cpu / (seconds + 6) * 100, 1)}


def search_stop(tmp: Path) -> dict[str, object]:
    base = random.randrange(20000, 40000)
    data = yaml.safe_load((ROOT / "experiments" / "checkout-capacity.yaml").read_text())
    data["steady_state"]["from"] = str(ROOT / "steady-states" / "demo-capacity.yaml")
    data["search"].update({"start": "100/s", "factor": 2, "step": "5s", "ceiling": "3200/s",
                           "production": "50/s"})
    data["duration"] = "30s"
    path = tmp / "capacity.yaml"
    path.write_text(yaml.safe_dump(data))
    with Shop.start(base_port=base, replicas=2, state_dir=tmp / "shop", shop_name="loadbench"):
        main(["run", str(path), "--var", f"SHOP=http://127.0.0.1:{base}", "--report-dir",
              str(tmp / "search"), "--state-dir", str(tmp / "state2")])
    search = json.loads((tmp / "search" / "report.json").read_text())["search"]
    return {k: search[k] for k in ("held", "held_delivered", "broke", "broke_delivered",
                                   "saturated_from", "production", "headroom", "stop_seconds",
                                   "step_to_stop_seconds")}


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--only-search", action="store_true")
    args = parser.parse_args()
    if args.only_search:
        with tempfile.TemporaryDirectory() as raw:
            print("search", json.dumps(search_stop(Path(raw))), flush=True)
        return
    if shutil.which("nginx") is None:
        sys.exit("needs nginx (apt-get install nginx)")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        nginx, url = start_nginx(tmp)
        try:
            for workers in (0, 2):
                for rate in (float(r) for r in args.rates.split(",")):
                    print("accuracy", json.dumps(accuracy(url, rate, workers, args.seconds)),
                          flush=True)
            print("runner under 1000/s", json.dumps(runner_under_load(url, 1000.0, 30, tmp)),
                  flush=True)
        finally:
            nginx.terminate()
            nginx.wait()
        if not args.skip_search:
            print("search", json.dumps(search_stop(tmp)), flush=True)


if __name__ == "__main__":
    main_bench()

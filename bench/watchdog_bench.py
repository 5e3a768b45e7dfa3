"""The watchdog: time from the runner's death (SIGKILL) to the fault's revert, per driver.

    .venv/bin/python bench/watchdog_bench.py [--runs 50] [--drivers process,toxic,docker,kubernetes]

For each run: `chaosrunner run` (with its watchdog) injects one fault, the bench waits for
the ledger's `injected` record, SIGKILLs the runner (only the runner), and polls the
fault's effect every 20 ms until it is gone; nobody types anything. The figure is from
the SIGKILL to the first poll that sees the fault reverted. Real parts: a real process
(process.pause), the embedded `chaosrunner proxy` (toxiproxy.latency), a busybox container
on the local Docker engine (docker.pause), the fake Kubernetes API of tests/k8s_fixture.py
over real HTTP (kubernetes.scale). Prints one line per driver: runs, median, max, failures.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "watchdog")]

from helpers import proc_state, sleeping_process, wait_until  # noqa: E402
from watchdog_support import start, time_revert, wait_confirmed  # noqa: E402

from chaosrunner.testing.experiments import write_one_fault_experiment  # noqa: E402

# action, target, params, reverted, env
Case = tuple[str, str, str, Callable[[], bool], dict[str, str]]


@contextlib.contextmanager
def process_case(tmp: Path) -> Iterator[Case]:
    with sleeping_process(tmp / "sleeper.pid", 3600) as proc:
        yield ("process.pause", f"{{pid_file: {tmp / 'sleeper.pid'}}}", "",
               lambda: proc_state(proc.pid) in ("S", "R"), {})


@contextlib.contextmanager
def toxic_case(tmp: Path) -> Iterator[Case]:
    import httpx

    from chaosrunner.proxy.server import start_background

    handle = start_background()
    try:
        httpx.post(f"{handle.url}/proxies", timeout=10, json={
            "name": "bench", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
        yield ("toxiproxy.latency", f"{{proxy: bench, api: '{handle.url}'}}",
               "{latency: 500ms}",
               lambda: httpx.get(f"{handle.url}/proxies/bench/toxics", timeout=5).json() == [],
               {})
    finally:
        handle.stop()


@contextlib.contextmanager
def docker_case(tmp: Path) -> Iterator[Case]:
    import docker

    client = docker.from_env()
    box = client.containers.run("chaosrunner-busybox:test", ["sleep", "3600"], detach=True,
                                name=f"crbench-{uuid.uuid4().hex[:8]}", network_mode="host",
                                init=True)
    try:
        assert wait_until(lambda: _reload(box).status == "running", timeout=30)
        yield ("docker.pause", f"{{container: {box.name}}}", "",
               lambda: _reload(box).attrs["State"]["Paused"] is False, {})
    finally:
        box.remove(force=True)


def _reload(container: Any) -> Any:
    container.reload()
    return container


@contextlib.contextmanager
def kubernetes_case(tmp: Path) -> Iterator[Case]:
    from k8s_fixture import DEPLOYMENTS, FakeCluster

    with FakeCluster() as fake:
        fake.add_deployment("web", replicas=3)
        kubeconfig = fake.write_kubeconfig(tmp / "kubeconfig")

        def reverted() -> bool:
            deployment = fake.get(DEPLOYMENTS, "default", "web")
            return deployment is not None and deployment["spec"]["replicas"] == 3

        yield ("kubernetes.scale", "{namespace: default, name: web}",
               "{replicas: 1}", reverted, {"KUBECONFIG": str(kubeconfig)})


CASES = {"process": process_case, "toxic": toxic_case, "docker": docker_case,
         "kubernetes": kubernetes_case}


def one(tmp: Path, index: int, case: Case) -> float | None:
    action, target, params, reverted, env = case
    directory = tmp / f"run{index}"
    path = write_one_fault_experiment(directory, "bench", action, target, params=params)
    state = directory / "state"
    runner = start(path, state, env=env)
    wait_confirmed(state, runner)
    return time_revert(state, runner, reverted).took


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--drivers", default=",".join(CASES))
    args = parser.parse_args()
    for name in args.drivers.split(","):
        times: list[float] = []
        failures = 0
        with tempfile.TemporaryDirectory() as raw:
            tmp = Path(raw)
            with CASES[name](tmp) as case:
                for index in range(args.runs):
                    took = one(tmp, index, case)
                    if took is None:
                        failures += 1
                    else:
                        times.append(took)
        if times:
            print(f"{name:11} runs {len(times) + failures:3}  median {statistics.median(times):.3f}s"
                  f"  max {max(times):.3f}s  not reverted within 30 s: {failures}", flush=True)
        else:
            print(f"{name:11} runs {failures}  none reverted", flush=True)
    return 0


if __name__ == "__main__":
    start_time = time.monotonic()
    code = main()
    print(f"total {time.monotonic() - start_time:.0f}s")
    sys.exit(code)

"""Docker driver timings against a real engine: inject -> down, revert -> answering again.

For each container kind (a busybox httpd, and a demo-shop payments replica in Python),
`runs` times:
  * down:  from calling `DockerDriver.inject(docker.kill)` to the port refusing connections;
  * back:  from calling `DockerDriver.revert(handle)` to the first HTTP answer;
  * revert returns: how long `revert` itself blocks (it waits until the container runs).
Baseline in the same run: the same kill and start done with bare docker-py calls, so
the driver's own cost (lookups, state checks, waiting) is the difference.
Medians are printed; the engine must answer and the images must be built
(`images/build.sh busybox shop`).

    .venv/bin/python bench/docker_bench.py [--runs 10] [--kind busybox|shop|both]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chaosrunner.drivers.docker import DockerDriver

POLL = 0.005
LIMIT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def until(condition: Callable[[], bool], since: float) -> float:
    """Seconds from `since` until `condition()` holds (polled every 5 ms)."""
    while not condition():
        if time.monotonic() - since > LIMIT:
            raise TimeoutError("no change within 60s")
        time.sleep(POLL)
    return time.monotonic() - since


def start_container(client: Any, kind: str, port: int) -> Any:
    if kind == "busybox":
        image = "chaosrunner-busybox:test"
        command = ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"]
    else:
        image = "chaosrunner-shop:test"
        command = ["python3", "-m", "chaosrunner.demo.payments", "--port", str(port),
                   "--name", "payments-bench"]
    container = client.containers.run(image, command, detach=True, network_mode="host",
                                      init=True, name=f"chaosrunner-bench-{kind}-{port}",
                                      labels={"org.chaosrunner.bench": "docker"})
    until(lambda: answers(port), time.monotonic())
    return container


def measure_driver(container: Any, port: int) -> tuple[float, float, float]:
    driver = DockerDriver()
    target = {"container": container.name}
    params = driver.validate("docker.kill", target, {})
    [instance] = driver.resolve("docker.kill", target)
    start = time.monotonic()
    handle = driver.inject(instance, "docker.kill", params, key="bench")
    down = until(lambda: refuses(port), start)
    start = time.monotonic()
    driver.revert(handle)
    returned = time.monotonic() - start
    back = until(lambda: answers(port), start)
    return down, back, returned


def measure_baseline(container: Any, port: int) -> tuple[float, float, float]:
    start = time.monotonic()
    container.kill()
    down = until(lambda: refuses(port), start)
    start = time.monotonic()
    container.start()
    returned = time.monotonic() - start
    back = until(lambda: answers(port), start)
    return down, back, returned


def bench(client: Any, kind: str, runs: int) -> None:
    port = free_port()
    container = start_container(client, kind, port)
    try:
        rows = {"driver": [measure_driver(container, port) for _ in range(runs)],
                "bare docker-py": [measure_baseline(container, port) for _ in range(runs)]}
    finally:
        container.remove(force=True)
    for name, samples in rows.items():
        down, back, returned = (statistics.median(column) * 1000 for column in zip(*samples,
                                                                                  strict=True))
        print(f"{kind:8} {name:15} inject->down {down:7.1f} ms   revert->answering "
              f"{back:7.1f} ms   (revert call returned after {returned:6.1f} ms)   "
              f"median of {runs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kind", choices=["busybox", "shop", "both"], default="both")
    args = parser.parse_args()
    client = docker.from_env()
    try:
        print(f"Docker engine {client.version()['Version']}, {args.runs} runs each")
        for kind in (["busybox", "shop"] if args.kind == "both" else [args.kind]):
            bench(client, kind, args.runs)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

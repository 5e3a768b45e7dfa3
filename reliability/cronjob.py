"""The CronJob pattern in containers (deploy/cronjob.yaml; issue 10.2): the runner is PID 1
of a container sharing a state volume, SIGKILLed at a random moment of its fault; the
next job's container runs `chaosrunner --state-dir D recover` under a shell that is PID 1
again. Expected: recover exits 0 and takes the toxic back; nothing open in the ledger.

    python reliability/cronjob.py [RUNS]
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import (
    LABEL,
    ProxyTarget,
    Tally,
    build_images,
    docker_available,
    main,
    rng,
    runs_per_check,
    settle,
    unavailable,
)
from docker_fixtures import SHOP_IMAGE, job_container
from helpers import wait_until

from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import write_one_fault_experiment


def job(client: Any, data: Path, command: list[str]) -> Any:
    return job_container(client, SHOP_IMAGE, data, command, f"crrel-{uuid.uuid4().hex[:8]}",
                         {LABEL: "1"})


def one_run(client: Any, target: ProxyTarget, work: Path, tag: str, rand: Random
            ) -> tuple[bool, bool, bool, str]:
    data = work / tag
    write_one_fault_experiment(
        data, "exp", "toxiproxy.latency", target.target(), params=target.params(),
        duration="300s", fault="slow", hypothesis="the next job's recover takes back what "
        "a SIGKILLed PID 1 left")
    runner = job(client, data, ["python3", "-m", "chaosrunner", "--state-dir", "/data/state",
                                "run", "/data/exp.yaml", "--allow-exec",
                                "--report-dir", "/data/report"])
    recover: Any = None
    try:
        ledger = Ledger(data / "state")
        wait_until(lambda: any(f.confirmed for f in ledger.open_faults()), timeout=120)
        time.sleep(rand.uniform(0, 1.0))  # somewhere in the fault phase
        runner.kill(signal="SIGKILL")
        runner.wait(timeout=60)
        recover = job(client, data, ["/bin/sh", "-c", "python3 -m chaosrunner --state-dir "
                                     "/data/state recover && echo recovered"])
        status = recover.wait(timeout=300)["StatusCode"]
        said = recover.logs().decode(errors="replace")
    finally:
        for container in (runner, recover):
            if container is not None:
                container.remove(force=True)
    restored = settle(target, data / "state")
    return restored, status == 0 and "skipped" not in said, "Traceback" in said, (
        f"{tag}: recover exit {status}{'' if restored else ', LEFT BEHIND'}: {said[-300:]!r}")


def campaign(runs: int, out: Callable[[str], None] = print) -> bool:
    missing = docker_available()
    if missing is not None:
        return unavailable("docker", "CronJob pattern in containers",
                           f"no Docker engine: {missing}", out)
    import docker

    rand, seed = rng()
    build_images("shop")
    client = docker.from_env(timeout=60)
    tally = Tally("CronJob pattern in containers (PID 1 SIGKILLed, recover in the next one)")
    try:
        with tempfile.TemporaryDirectory(prefix="chaosrunner-cronjob-") as tmp:
            work = Path(tmp)
            target = ProxyTarget(work)
            try:
                for index in range(runs):
                    tally.add(*one_run(client, target, work, f"job-{index}", rand))
            finally:
                target.close()
    finally:
        client.close()
    ok = tally.report(out)
    out(f"cronjob: seed {seed}")
    return ok


def runs() -> int:
    """A fifth of the other checks' runs: each one starts two containers."""
    return max(1, runs_per_check() // 5)


if __name__ == "__main__":
    main(campaign, runs())

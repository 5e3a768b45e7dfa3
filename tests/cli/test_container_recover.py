"""The CronJob pattern for real (deploy/cronjob.yaml): the runner is PID 1 of a container
and is SIGKILLed mid-fault; the next job's container, sharing the state volume, runs
`chaosrunner --state-dir D recover` under a shell that is PID 1 again. `recover` must see
the old runner as dead (its marker's flock is gone with it) and take the fault back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_fixtures import TEST_LABEL, Containers, job_container, state_of, wait_until
from helpers import Proxy, embedded_proxy

from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import write_one_fault_experiment


def job(client: Any, box: Containers, image: str, data: Path, suffix: str,
        command: list[str]) -> Any:
    return job_container(client, image, data, command, f"crtest-{box.test_id}-{suffix}",
                         {TEST_LABEL: "pid1", f"{TEST_LABEL}.case": box.test_id})


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with embedded_proxy("pid1") as made:
        yield made


def test_recover_in_the_next_container_takes_back_what_a_killed_pid1_left(
        docker_client: Any, containers: Containers, shop_image: str,
        proxy: Proxy, tmp_path: Path) -> None:
    write_one_fault_experiment(
        tmp_path, "exp", "toxiproxy.latency", proxy.target(), params="{latency: 10ms}",
        duration="300s", fault="slow", hypothesis="recover in the next container takes "
        "back what a SIGKILLed PID 1 left")
    runner = job(docker_client, containers, shop_image, tmp_path, "run", [
        "python3", "-m", "chaosrunner", "--state-dir", "/data/state", "run", "/data/exp.yaml",
        "--report-dir", "/data/report", "--allow-exec"])
    ledger = Ledger(tmp_path / "state")
    wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
               or not state_of(runner)["Running"], timeout=120, what="the toxic injected")
    assert state_of(runner)["Running"], runner.logs().decode()
    assert state_of(runner)["Pid"] > 0 and len(proxy.toxics()) == 1

    runner.kill(signal="SIGKILL")  # PID 1 dies: its whole container (watchdog too) with it
    wait_until(lambda: not state_of(runner)["Running"], timeout=60, what="the runner gone")
    assert len(proxy.toxics()) == 1  # the fault outlived its runner

    # As in deploy/cronjob.yaml: a shell is PID 1, and recover is its child.
    recover = job(docker_client, containers, shop_image, tmp_path, "recover", [
        "/bin/sh", "-c", "python3 -m chaosrunner --state-dir /data/state recover && echo ok"])
    status = recover.wait(timeout=120)
    logs = recover.logs().decode()
    assert status["StatusCode"] == 0, logs
    assert "reverted" in logs and "skipped" not in logs, logs
    assert proxy.toxics() == []
    assert ledger.open_faults() == []
    assert not list((tmp_path / "state" / "active").glob("*.json"))

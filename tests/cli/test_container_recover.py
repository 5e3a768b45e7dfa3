"""The CronJob pattern for real (deploy/cronjob.yaml): the runner is PID 1 of a container
and is SIGKILLed mid-fault; the next job's container, sharing the state volume, runs
`chaosrunner --state-dir D recover` under a shell that is PID 1 again. `recover` must see
the old runner as dead (its marker's flock is gone with it) and take the fault back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_fixtures import ROOT, TEST_LABEL, Containers, state_of, wait_until

from chaosrunner.engine.ledger import Ledger

STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: local
service_level_objectives:
  alive:
    sli: {command: "echo 1"}
    target: 99%
"""

EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: container-pid1
hypothesis: recover in the next container takes back what a SIGKILLed PID 1 left
steady_state: {{from: steady.yaml, before: 250ms, after: 250ms, interval: 250ms}}
duration: 300s
faults:
  - name: slow
    action: toxiproxy.latency
    target: {{proxy: {proxy}, api: "{api}"}}
    with: {{latency: 10ms}}
"""


@pytest.fixture
def proxy_api() -> Iterator[tuple[str, str]]:
    """`chaosrunner proxy` on the host with one proxy: (api url, proxy name)."""
    from chaosrunner.proxy.server import start_background

    handle = start_background()
    name = f"pid1-{uuid.uuid4().hex[:8]}"
    try:
        response = httpx.post(f"{handle.url}/proxies", timeout=10, json={
            "name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
        assert response.status_code == 201, response.text
        yield handle.url, name
    finally:
        handle.stop()


def toxics(api: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{api}/proxies/{name}/toxics", timeout=10).json()
    return found


# This checkout's code over the image's (the image gives Python and the dependencies): the
# shop image's tag is shared by every checkout on the machine's Docker engine.
SOURCE = Path(os.environ.get("CHAOSRUNNER_CONTAINER_SOURCE", ROOT / "chaosrunner"))


def job(client: Any, box: Containers, image: str, data: Path, suffix: str,
        command: list[str]) -> Any:
    """One job's container: chaosrunner's image, host network, the state volume at /data,
    no init (the command is PID 1, as in the CronJob)."""
    return client.containers.run(
        image, command=command, name=f"crtest-{box.test_id}-{suffix}", detach=True,
        network_mode="host", init=False,
        volumes={str(data): {"bind": "/data", "mode": "rw"},
                 str(SOURCE): {"bind": "/app/chaosrunner", "mode": "ro"}},
        labels={TEST_LABEL: "pid1", f"{TEST_LABEL}.case": box.test_id})


def test_recover_in_the_next_container_takes_back_what_a_killed_pid1_left(
        docker_client: Any, containers: Containers, shop_image: str,
        proxy_api: tuple[str, str], tmp_path: Path) -> None:
    api, proxy = proxy_api
    (tmp_path / "steady.yaml").write_text(STEADY)
    (tmp_path / "exp.yaml").write_text(EXPERIMENT.format(proxy=proxy, api=api))
    runner = job(docker_client, containers, shop_image, tmp_path, "run", [
        "python3", "-m", "chaosrunner", "--state-dir", "/data/state", "run", "/data/exp.yaml",
        "--report-dir", "/data/report", "--allow-exec"])
    ledger = Ledger(tmp_path / "state")
    wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
               or not state_of(runner)["Running"], timeout=120, what="the toxic injected")
    assert state_of(runner)["Running"], runner.logs().decode()
    assert state_of(runner)["Pid"] > 0 and len(toxics(api, proxy)) == 1

    runner.kill(signal="SIGKILL")  # PID 1 dies: its whole container (watchdog too) with it
    wait_until(lambda: not state_of(runner)["Running"], timeout=60, what="the runner gone")
    assert len(toxics(api, proxy)) == 1  # the fault outlived its runner

    # As in deploy/cronjob.yaml: a shell is PID 1, and recover is its child.
    recover = job(docker_client, containers, shop_image, tmp_path, "recover", [
        "/bin/sh", "-c", "python3 -m chaosrunner --state-dir /data/state recover && echo ok"])
    status = recover.wait(timeout=120)
    logs = recover.logs().decode()
    assert status["StatusCode"] == 0, logs
    assert "reverted" in logs and "skipped" not in logs, logs
    assert toxics(api, proxy) == []
    assert ledger.open_faults() == []
    assert not list((tmp_path / "state" / "active").glob("*.json"))

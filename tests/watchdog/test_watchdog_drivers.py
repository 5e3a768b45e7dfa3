"""SIGKILL the runner mid-fault with a real Docker engine, a real `chaosrunner proxy` and the
fake Kubernetes API: with no command typed afterwards, the fault is gone within 5 s."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker_fixtures import Containers, state_of
from k8s_fixture import DEPLOYMENTS, FakeCluster
from watchdog_support import kill_and_time, start, wait_confirmed

from chaosrunner.testing.experiments import write_one_fault_experiment

RUNS = int(os.environ.get("CHAOSRUNNER_WATCHDOG_RUNS", "3"))


# --- docker.pause ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(RUNS))
def test_docker_pause(containers: Containers, tmp_path: Path, attempt: int) -> None:
    box = containers.sleeper("paused")
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "docker-pause", "docker.pause",
                                      f"{{container: {box.name}}}")
    runner = start(path, state)
    wait_confirmed(state, runner)
    assert state_of(box)["Paused"] is True
    kill_and_time(state, runner, lambda: state_of(box)["Paused"] is False,
                  exit_within=60)


# --- a toxic on chaosrunner proxy -------------------------------------------------------------


@pytest.fixture
def proxy_api() -> Iterator[tuple[str, str]]:
    """The embedded proxy server with one proxy: (api url, proxy name)."""
    from chaosrunner.proxy.server import start_background

    handle = start_background()
    name = f"wd-{uuid.uuid4().hex[:8]}"
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


@pytest.mark.parametrize("attempt", range(RUNS))
def test_toxic(proxy_api: tuple[str, str], tmp_path: Path, attempt: int) -> None:
    api, name = proxy_api
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "toxic", "toxiproxy.latency",
                                      f"{{proxy: {name}, api: '{api}'}}",
                                      params="{latency: 500ms}")
    runner = start(path, state)
    wait_confirmed(state, runner)
    assert len(toxics(api, name)) == 1
    kill_and_time(state, runner, lambda: toxics(api, name) == [],
                  exit_within=60)


# --- kubernetes.scale on the fake API ----------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    with FakeCluster() as fake:
        fake.add_deployment("web", replicas=3)
        yield fake, fake.write_kubeconfig(tmp_path / "kubeconfig")


def replicas(fake: FakeCluster) -> int:
    deployment = fake.get(DEPLOYMENTS, "default", "web")
    assert deployment is not None
    return int(deployment["spec"]["replicas"])


@pytest.mark.parametrize("attempt", range(RUNS))
def test_kubernetes_scale(cluster: tuple[FakeCluster, Path], tmp_path: Path,
                          attempt: int) -> None:
    fake, kubeconfig = cluster
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "k8s-scale", "kubernetes.scale",
                                      "{namespace: default, name: web}", params="{replicas: 1}")
    runner = start(path, state, env={"KUBECONFIG": str(kubeconfig)})
    wait_confirmed(state, runner)
    assert replicas(fake) == 1
    kill_and_time(state, runner, lambda: replicas(fake) == 3,
                  exit_within=60)

"""SIGKILL the runner mid-fault with a real Docker engine, a real `chaosrunner proxy` and the
fake Kubernetes API: with no command typed afterwards, the fault is gone within 5 s."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_fixtures import Containers, state_of
from helpers import Proxy, embedded_proxy
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
def proxy() -> Iterator[Proxy]:
    """The embedded proxy server with one proxy."""
    with embedded_proxy("wd") as made:
        yield made


@pytest.mark.parametrize("attempt", range(RUNS))
def test_toxic(proxy: Proxy, tmp_path: Path, attempt: int) -> None:
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "toxic", "toxiproxy.latency", proxy.target(),
                                      params="{latency: 500ms}")
    runner = start(path, state)
    wait_confirmed(state, runner)
    assert len(proxy.toxics()) == 1
    kill_and_time(state, runner, lambda: proxy.toxics() == [],
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

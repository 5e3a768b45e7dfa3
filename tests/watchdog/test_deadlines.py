"""Deadlines on faults (issue 13 item 2): Kubernetes marks and `recover --kubernetes`, the
toxic's expiry on `chaosrunner proxy`; with the runner and its watchdog both SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, embedded_proxy, wait_until
from k8s_fixture import DEPLOYMENTS, FakeCluster
from watchdog_support import end_watchdog, start, wait_confirmed, watchdog_pid

from chaosrunner.drivers.base import DEADLINE_PARAM, DriverContext
from chaosrunner.drivers.kubernetes import (
    DEADLINE_ANNOTATION,
    FAULT_LABEL,
    PARTITION_LABEL,
    PREVIOUS_ANNOTATION,
    KubernetesDriver,
)
from chaosrunner.drivers.kubernetes_sweep import sweep
from chaosrunner.engine.ledger import Ledger
from chaosrunner.testing.experiments import write_one_fault_experiment


def driver(run_id: str = "deadline-test") -> KubernetesDriver:
    return KubernetesDriver(DriverContext(run_id=run_id, api_timeout=5.0))


def web(fake: FakeCluster) -> dict[str, Any]:
    deployment = fake.get(DEPLOYMENTS, "default", "web")
    assert deployment is not None
    return deployment


def meta(obj: dict[str, Any], part: str) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get(part) or {})


def move_deadline(kind: str, name: str, when: float) -> None:
    """Make time pass for one marked object: its deadline annotation is set to `when`."""
    from chaosrunner.drivers.kubernetes import rfc3339

    d = driver()
    core, apps, net = d.apis()
    patch = {"metadata": {"annotations": {DEADLINE_ANNOTATION: rfc3339(when)}}}
    if kind == "Deployment":
        d.call("patch", apps.patch_namespaced_deployment, name, "default", patch)
    else:
        d.call("patch", net.patch_namespaced_network_policy, name, "default", patch)


def test_scale_carries_run_previous_state_and_deadline_and_revert_takes_them_off(
        cluster: FakeCluster) -> None:
    d = driver()
    [workload] = d.resolve("kubernetes.scale", {"name": "web"})
    deadline = time.time() + 90
    handle = d.inject(workload, "kubernetes.scale", {"replicas": 1, DEADLINE_PARAM: deadline},
                      "deadline-test.scale.0")
    marked = web(cluster)
    assert marked["spec"]["replicas"] == 1
    assert meta(marked, "labels")[FAULT_LABEL] == "scale"
    notes = meta(marked, "annotations")
    assert notes[PREVIOUS_ANNOTATION] == "3"
    assert notes["chaosrunner.io/run-id"] == "deadline-test"
    assert notes["chaosrunner.io/key"] == "deadline-test.scale.0"
    assert abs(time.mktime(time.strptime(notes[DEADLINE_ANNOTATION], "%Y-%m-%dT%H:%M:%SZ"))
               - time.timezone - deadline) < 2
    d.revert(handle)
    clean = web(cluster)
    assert clean["spec"]["replicas"] == 3
    assert FAULT_LABEL not in meta(clean, "labels")
    assert not any(k.startswith("chaosrunner.io/") for k in meta(clean, "annotations"))


def test_the_sweep_waits_for_the_deadline_then_reverts_once(cluster: FakeCluster) -> None:
    d = driver()
    [workload] = d.resolve("kubernetes.scale", {"name": "web"})
    d.inject(workload, "kubernetes.scale", {"replicas": 0, DEADLINE_PARAM: time.time() + 600},
             "gone-run.scale.0")
    [pod] = d.resolve("kubernetes.partition", {"selector": "app=db"})
    d.inject(pod, "kubernetes.partition", {"direction": "both",
                                           DEADLINE_PARAM: time.time() + 600}, "gone-run.cut.0")
    assert [s.status for s in sweep(d, "default", time.time())] == ["pending", "pending"]
    assert web(cluster)["spec"]["replicas"] == 0 and cluster.policies()
    swept = sweep(d, None, time.time() + 601)  # all namespaces, past both deadlines
    assert sorted((s.action, s.status) for s in swept) == [
        ("kubernetes.partition", "reverted"), ("kubernetes.scale", "reverted")]
    assert web(cluster)["spec"]["replicas"] == 3
    assert cluster.policies() == []
    pods = {p["metadata"]["name"]: p for p in cluster.pods("default", "app=db")}
    assert PARTITION_LABEL not in meta(pods[pod.attrs["pod"]], "labels")
    assert sweep(d, "default", time.time() + 601) == []  # idempotent: nothing left


def chaosrunner_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaosrunner", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def kill_both(state: Path, runner: subprocess.Popen[str]) -> None:
    dog = watchdog_pid(state)
    assert dog is not None
    os.kill(dog, signal.SIGKILL)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    assert wait_until(lambda: not Path(f"/proc/{dog}").exists()
                      or "Z" in Path(f"/proc/{dog}/stat").read_text().split()[2], timeout=10)
    end_watchdog(dog)


def test_runner_and_watchdog_killed_together_the_sweep_reverts_the_scale(
        cluster: FakeCluster, tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = write_one_fault_experiment(tmp_path, "k8s-scale", "kubernetes.scale",
                                      "{namespace: default, name: web}", params="{replicas: 1}")
    runner = start(path, state)
    wait_confirmed(state, runner)
    kill_both(state, runner)
    assert web(cluster)["spec"]["replicas"] == 1  # nobody left to take it back
    done = chaosrunner_cli("--state-dir", str(state), "recover", "--kubernetes", "--namespace",
                           "default", "--output", "json")
    assert done.returncode == 0, done.stderr
    [pending] = json.loads(done.stdout)["swept"]
    assert pending["status"] == "pending" and pending["run_id"].startswith("k8s-scale-")
    assert web(cluster)["spec"]["replicas"] == 1  # not before its deadline
    move_deadline("Deployment", "web", time.time() - 1)
    done = chaosrunner_cli("recover", "--kubernetes", "--namespace", "default",
                           "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "reverted  kubernetes.scale on Deployment default/web" in done.stdout
    assert web(cluster)["spec"]["replicas"] == 3
    assert Ledger(state).open_faults() == []  # the sweep told the ledger
    again = chaosrunner_cli("recover", "--kubernetes", "--namespace", "default")
    assert again.returncode == 0 and "nothing to recover" in again.stdout


def test_runner_and_watchdog_killed_together_the_toxic_expires_on_the_proxy(
        tmp_path: Path) -> None:
    with embedded_proxy("exp") as proxy:
        state = tmp_path / "state"
        path = write_one_fault_experiment(tmp_path, "toxic", "toxiproxy.latency",
                                          proxy.target(), params="{latency: 500ms}",
                                          duration="4s")
        runner = start(path, state)
        wait_confirmed(state, runner)
        kill_both(state, runner)
        [toxic] = proxy.toxics()
        [fault] = Ledger(state).open_faults()
        assert fault.deadline is not None
        assert abs(toxic["attributes"]["expires_at"] - fault.deadline) < 1.0
        # The proxy removes it at its deadline (planned end + 30 s), by itself.
        wait = fault.deadline - time.time() + 30
        assert wait_until(lambda: proxy.toxics() == [], timeout=wait, step=0.2)
        assert time.time() >= fault.deadline - 0.5


def test_a_sweep_that_cannot_reach_the_cluster_says_so_and_exits_5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: x, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: x, user: u}}]\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    done = chaosrunner_cli("recover", "--kubernetes", "--namespace", "default",
                           "--state-dir", str(tmp_path / "state"))
    assert done.returncode == 5, done.stdout + done.stderr
    assert "cannot sweep the cluster" in done.stderr and "Traceback" not in done.stderr

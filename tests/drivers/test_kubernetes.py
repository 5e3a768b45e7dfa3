"""The kubernetes driver against a stateful fake API server over real HTTP (tests/k8s_fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, wait_until
from k8s_fixture import DEPLOYMENTS, FakeCluster

from chaosrunner.drivers.base import DriverContext, Handle, ParamError
from chaosrunner.drivers.kubernetes import KubernetesDriver
from chaosrunner.errors import (
    BlastRadiusExceeded,
    DriverError,
    DriverUnavailable,
    Refused,
    TargetNotFound,
)
from chaosrunner.testing.contract import ContractCase, DriverContract


def make_driver(api_timeout: float = 5.0) -> KubernetesDriver:
    return KubernetesDriver(DriverContext(run_id="k8s-test-run", api_timeout=api_timeout))


def replicas(cluster: FakeCluster, name: str = "web") -> int:
    deployment = cluster.get(DEPLOYMENTS, "default", name)
    assert deployment is not None
    return int(deployment["spec"]["replicas"])


# --- the shared contract, for the faults whose effect can be read back -----------------------


class TestScaleContract(DriverContract):
    @pytest.fixture
    def case(self, cluster: FakeCluster) -> ContractCase:
        return ContractCase(make_driver(), "kubernetes.scale",
                            {"kind": "Deployment", "name": "web"}, {"replicas": 1},
                            faulted=lambda instance: replicas(cluster) != 3)


class TestPartitionContract(DriverContract):
    @pytest.fixture
    def case(self, cluster: FakeCluster) -> ContractCase:
        return ContractCase(make_driver(), "kubernetes.partition", {"selector": "app=web"},
                            {"direction": "both"},
                            faulted=lambda instance: bool(cluster.policies()))


# --- delete_pod ---------------------------------------------------------------------------


def test_delete_pod_reverts_once_the_controller_has_replaced_it(cluster: FakeCluster) -> None:
    driver = make_driver()
    target = {"selector": "app=web"}
    params = driver.validate("kubernetes.delete_pod", target, {"grace_period": "0s"})
    instances = driver.resolve("kubernetes.delete_pod", target)
    assert sorted(i.attrs["pod"] for i in instances) == sorted(
        p["metadata"]["name"] for p in cluster.pods(selector="app=web"))
    assert len(instances) == 3  # the db pod is not matched: selectors are filtered
    victim = instances[0]
    handle = driver.inject(victim, "kubernetes.delete_pod", params, "k1")
    names = {p["metadata"]["name"] for p in cluster.pods(selector="app=web")}
    assert victim.attrs["pod"] not in names
    assert cluster.requests("DELETE", f"/pods/{victim.attrs['pod']}$") == 1
    driver.revert(Handle.from_json(json.loads(json.dumps(handle.to_json()))))
    # revert returned only once three pods, none of them the victim, are Ready again
    pods = cluster.pods(selector="app=web")
    assert cluster.ready_pods(selector="app=web") == 3
    assert victim.attrs["pod"] not in {p["metadata"]["name"] for p in pods}


def test_delete_pod_revert_fails_when_the_controller_never_recovers(cluster: FakeCluster) -> None:
    driver = make_driver()
    params = driver.validate("kubernetes.delete_pod", {"selector": "app=web"}, {"timeout": "1s"})
    victim = driver.resolve("kubernetes.delete_pod", {"selector": "app=web"})[0]
    cluster.controller_running = False
    handle = driver.inject(victim, "kubernetes.delete_pod", params, "k1")
    started = time.monotonic()
    with pytest.raises(DriverError, match=r"2 of 3 replicas ready.*chaosrunner recover"):
        driver.revert(handle)
    assert time.monotonic() - started < 10
    cluster.controller_running = True
    driver.revert(handle)  # once the controller catches up, the same handle reverts


def test_delete_pod_refuses_pods_without_a_controller(cluster: FakeCluster) -> None:
    cluster.add_pod("lonely", labels={"app": "lonely"})
    with pytest.raises(Refused, match="no controller"):
        make_driver().resolve("kubernetes.delete_pod", {"selector": {"app": "lonely"}})


def test_delete_pod_by_workload_name(cluster: FakeCluster) -> None:
    instances = make_driver().resolve("kubernetes.delete_pod",
                                      {"kind": "Deployment", "name": "db"})
    assert [i.attrs["owner"]["kind"] for i in instances] == ["ReplicaSet"]


# --- scale --------------------------------------------------------------------------------


def test_scale_reverts_to_the_count_read_at_inject_not_at_plan(cluster: FakeCluster) -> None:
    driver = make_driver()
    [workload] = driver.resolve("kubernetes.scale", {"name": "web"})
    assert workload.attrs["replicas"] == 3
    _, apps, _ = driver.apis()  # someone (not chaosrunner) scales between plan and inject
    driver.call("scale", apps.patch_namespaced_deployment, "web", "default",
                {"spec": {"replicas": 4}})
    handle = driver.inject(workload, "kubernetes.scale", {"replicas": 1}, "k1")
    assert handle.data["previous"] == 4
    assert wait_until(lambda: len(cluster.pods(selector="app=web")) == 1)
    driver.revert(handle)
    assert replicas(cluster) == 4
    assert wait_until(lambda: cluster.ready_pods(selector="app=web") == 4)


def test_scale_validation() -> None:
    driver = make_driver()
    with pytest.raises(ParamError) as info:
        driver.validate("kubernetes.scale", {"name": "web"}, {"replicas": -1})
    assert info.value.key_path == ("with", "replicas")
    with pytest.raises(ParamError):
        driver.validate("kubernetes.scale", {"kind": "Pod", "name": "web"}, {"replicas": 1})
    with pytest.raises(ParamError):
        driver.validate("kubernetes.scale", {"name": "web", "selector": "a=b"}, {"replicas": 1})
    with pytest.raises(ParamError):
        driver.validate("kubernetes.partition", {"selector": "a=b"}, {"direction": "sideways"})


# --- partition ----------------------------------------------------------------------------


def test_partition_policy_is_labelled_and_recover_deletes_exactly_it(cluster: FakeCluster) -> None:
    driver = make_driver()
    [web_pod, *_] = driver.resolve("kubernetes.partition", {"selector": "app=web"})
    [db_pod] = driver.resolve("kubernetes.partition", {"selector": "app=db"})
    web = driver.inject(web_pod, "kubernetes.partition", {"direction": "ingress"}, "run.web.0")
    driver.inject(db_pod, "kubernetes.partition", {"direction": "egress"}, "run.db.0")
    policies = {p["metadata"]["name"]: p for p in cluster.policies()}
    assert len(policies) == 2
    policy = policies[web.data["policy"]]
    assert policy["metadata"]["labels"]["chaosrunner.io/run-id"] == "k8s-test-run"
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    selected = [p for p in cluster.pods() if p["metadata"]["labels"].get(
        "chaosrunner.io/partition") == policy["spec"]["podSelector"]["matchLabels"][
        "chaosrunner.io/partition"]]
    assert [p["metadata"]["name"] for p in selected] == [web_pod.attrs["pod"]]
    # `recover` in a new process has only the JSON handle
    make_driver().revert(Handle.from_json(json.loads(json.dumps(web.to_json()))))
    remaining = [p["metadata"]["name"] for p in cluster.policies()]
    assert web.data["policy"] not in remaining
    assert len(remaining) == 1  # the db policy is untouched
    [unlabelled] = [p for p in cluster.pods() if p["metadata"]["name"] == web_pod.attrs["pod"]]
    assert "chaosrunner.io/partition" not in unlabelled["metadata"]["labels"]


# --- namespaces and configuration ---------------------------------------------------------


def test_kube_system_only_when_named(cluster: FakeCluster, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.add_deployment("dns", replicas=2, namespace="kube-system")
    monkeypatch.setenv("KUBECONFIG", str(cluster.write_kubeconfig(
        tmp_path / "system", namespace="kube-system")))
    with pytest.raises(Refused, match="kube-system"):
        make_driver().resolve("kubernetes.delete_pod", {"selector": "app=dns"})
    named = make_driver().resolve("kubernetes.delete_pod",
                                  {"namespace": "kube-system", "selector": "app=dns"})
    assert len(named) == 2


def test_blast_radius_namespaces(cluster: FakeCluster) -> None:
    driver = make_driver()
    driver.check_namespaces({"namespace": "shop"}, ("shop",))
    with pytest.raises(BlastRadiusExceeded, match=r"outside blast_radius\.namespaces"):
        driver.check_namespaces({"selector": "app=web"}, ("shop",))  # context default: default


def test_kubeconfig_context_key_selects_the_context(cluster: FakeCluster, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.write_kubeconfig(tmp_path / "kc", context="stage")))
    assert make_driver().resolve("kubernetes.scale", {"name": "web", "context": "stage"})
    with pytest.raises(DriverUnavailable, match="unusable"):
        make_driver().resolve("kubernetes.scale", {"name": "web", "context": "nope"})


def test_no_configuration_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(DriverUnavailable, match="set KUBECONFIG"):
        make_driver().resolve("kubernetes.scale", {"name": "web", "namespace": "default"})


# --- API errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error", "words"), [
    (401, DriverUnavailable, "credentials were rejected"),
    (403, DriverUnavailable, "deploy/rbac.yaml"),
    (500, DriverUnavailable, "API server failed"),
    (503, DriverUnavailable, "retry later"),
])
def test_api_errors_on_resolve(cluster: FakeCluster, status: int, error: type[Exception],
                               words: str) -> None:
    cluster.fail("GET", r"/pods$", status=status)
    with pytest.raises(error, match=words) as info:
        make_driver().resolve("kubernetes.delete_pod", {"selector": "app=web"})
    assert f"{status}" in str(info.value) and "list pods in default" in str(info.value)


def test_missing_workload_is_target_not_found(cluster: FakeCluster) -> None:
    with pytest.raises(TargetNotFound, match="Deployment default/nope"):
        make_driver().resolve("kubernetes.scale", {"name": "nope"})


def test_conflict_on_create_is_a_driver_error(cluster: FakeCluster) -> None:
    driver = make_driver()
    [pod, *_] = driver.resolve("kubernetes.partition", {"selector": "app=web"})
    cluster.fail("POST", r"/networkpolicies$", status=409)
    with pytest.raises(DriverError, match="conflict"):
        driver.inject(pod, "kubernetes.partition", {"direction": "both"}, "k1")


def test_slow_api_times_out(cluster: FakeCluster) -> None:
    cluster.fail("GET", r"/deployments/web$", delay=3.0)
    started = time.monotonic()
    with pytest.raises(DriverUnavailable, match="unreachable"):
        make_driver(api_timeout=0.3).resolve("kubernetes.scale", {"name": "web"})
    assert time.monotonic() - started < 2.9  # did not wait for the slow answer


def test_revert_survives_a_transient_server_error(cluster: FakeCluster) -> None:
    driver = make_driver()
    [workload] = driver.resolve("kubernetes.scale", {"name": "web"})
    handle = driver.inject(workload, "kubernetes.scale", {"replicas": 2}, "k1")
    cluster.fail("PATCH", r"/deployments/web$", status=500, times=1)
    with pytest.raises(DriverUnavailable):
        driver.revert(handle)
    driver.revert(handle)  # the engine retries; the second attempt goes through
    assert replicas(cluster) == 3


def test_health(cluster: FakeCluster) -> None:
    make_driver().health()
    cluster.fail("GET", r"^/version", status=401)
    with pytest.raises(DriverUnavailable):
        make_driver().health()


# --- chaostoolkit-kubernetes through the python driver --------------------------------------


def test_chaosk8s_activity_through_the_python_driver(cluster: FakeCluster,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from kubernetes.config import kube_config

    from chaosrunner.drivers.python import PythonDriver

    # The client reads KUBECONFIG once, at import; this process imported it for another test.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", os.environ["KUBECONFIG"])

    driver = PythonDriver(DriverContext(allow_exec=True))
    params = driver.validate("python", {}, {
        "call": "chaosk8s.deployment.actions.scale_deployment",
        "args": {"name": "web", "replicas": 1, "ns": "${namespace}"},
        "configuration": {"namespace": "default"},
        "revert": {"call": "chaosk8s.deployment.actions.scale_deployment",
                   "args": {"name": "web", "replicas": 3, "ns": "default"}}})
    [instance] = driver.resolve("python", {})
    handle = driver.inject(instance, "python", params, "k1")
    assert replicas(cluster) == 1
    driver.revert(Handle.from_json(handle.to_json()))
    assert replicas(cluster) == 3


# --- lazy import ----------------------------------------------------------------------------


@pytest.mark.parametrize("experiment", ["experiments/instance-failure.yaml",
                                        "experiments/k8s-pod-loss.yaml"])
def test_validate_never_imports_the_kubernetes_client(experiment: str) -> None:
    code = ("import sys; from chaosrunner.cli.main import main; "
            f"code = main(['validate', {experiment!r}]); "
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('kubernetes', 'chaosk8s', 'urllib3')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr


# --- the shipped example, run end to end against the fake cluster ---------------------------


def test_k8s_pod_loss_example_runs_and_the_pod_comes_back(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from helpers import http_server

    from chaosrunner.app.run import run_file
    from chaosrunner.engine.context import RunOptions

    with FakeCluster() as fake, http_server(tmp_path) as (url, _, _):
        fake.add_deployment("payments", replicas=3, namespace="shop")
        fake.add_deployment("checkout", replicas=1, namespace="shop")
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        # The shipped files, shortened and pointed at a local page instead of the shop.
        steady = yaml.safe_load((REPO / "steady-states/k8s-shop.yaml").read_text())
        for slo in steady["service_level_objectives"].values():
            slo["sli"]["http"]["url"] = url
            slo["sli"]["http"]["rate"] = "5/s"
        experiment = yaml.safe_load((REPO / "experiments/k8s-pod-loss.yaml").read_text())
        experiment["steady_state"].update({"from": "steady.yaml", "before": "1s", "after": "2s"})
        experiment["duration"] = "2s"
        (tmp_path / "steady.yaml").write_text(yaml.safe_dump(steady))
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
        before = {p["metadata"]["name"] for p in fake.pods("shop", "app=payments")}

        report = run_file(tmp_path / "exp.yaml", RunOptions(state_dir=tmp_path / "state",
                                                            report_dir=tmp_path / "report"),
                          output="json")

        assert report.verdict == "passed", report.reason
        [fault] = report.faults
        assert fault.action == "kubernetes.delete_pod" and fault.reverted_at
        after = {p["metadata"]["name"] for p in fake.pods("shop", "app=payments")}
        assert len(after) == 3 and len(before - after) == 1  # exactly one pod was replaced
        assert fake.ready_pods("shop", "app=payments") == 3
        assert {p["metadata"]["name"] for p in fake.pods("shop", "app=checkout")}  # untouched


def test_blast_radius_namespaces_refuse_the_run(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from chaosrunner.app.run import run_file
    from chaosrunner.engine.context import RunOptions

    with FakeCluster() as fake:
        fake.add_deployment("payments", replicas=3, namespace="shop")
        fake.add_deployment("payments", replicas=3, namespace="other")
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        experiment = yaml.safe_load((REPO / "experiments/k8s-pod-loss.yaml").read_text())
        experiment["steady_state"]["from"] = str(REPO / "steady-states/k8s-shop.yaml")
        experiment["faults"][0]["target"]["namespace"] = "other"
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
        report = run_file(tmp_path / "exp.yaml", RunOptions(state_dir=tmp_path / "state",
                                                            report_dir=tmp_path / "report"),
                          output="json")
        assert report.verdict == "not_started"
        assert "blast_radius.namespaces" in (report.reason or "")
        assert fake.requests("DELETE", r"/pods/") == 0


def test_rbac_role_grants_exactly_the_verbs_the_driver_uses(cluster: FakeCluster) -> None:
    import yaml

    driver = make_driver()
    for action, target, params in [
            ("kubernetes.delete_pod", {"selector": "app=web"}, {"grace_period": "0s"}),
            ("kubernetes.scale", {"kind": "Deployment", "name": "web"}, {"replicas": 2}),
            ("kubernetes.scale", {"kind": "ReplicaSet", "selector": "app=db"}, {"replicas": 2}),
            ("kubernetes.scale", {"selector": "app=web"}, {"replicas": 4}),
            ("kubernetes.partition", {"kind": "Deployment", "name": "web"}, {}),
            ("kubernetes.partition", {"kind": "Pod", "name": cluster.pods(
                selector="app=db")[0]["metadata"]["name"]}, {"direction": "egress"})]:
        checked = driver.validate(action, target, params)
        instance = driver.resolve(action, target)[0]
        driver.revert(driver.inject(instance, action, checked, f"rbac.{action}"))
    # The CronJob's other uses: the sweep (`recover --kubernetes`) and the halt ConfigMap.
    from chaosrunner.drivers.kubernetes_sweep import sweep
    from chaosrunner.engine.halt import ConfigMapHalt

    assert sweep(driver, "default", time.time()) == []
    halt = ConfigMapHalt("default", "chaosrunner-halt")
    halt.set("rbac")
    assert halt.check() == "rbac"
    halt.clear()
    used: set[tuple[str, str, str]] = set()
    assert cluster.api is not None
    for request in cluster.api._requests:
        if request.resource is None:
            continue
        verb = {"LIST": "list", "FETCH": "get", "CREATE": "create", "UPDATE": "patch",
                "DELETE": "delete"}[request.action.value]
        used.add((request.resource.group, request.resource.plural, verb))
    rules = next(d for d in yaml.safe_load_all((REPO / "deploy/rbac.yaml").read_text())
             if d["kind"] == "Role")["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert used <= granted  # everything the driver did is allowed ...
    # ... and nothing is granted that the driver never uses (statefulsets share the code path)
    assert {(g, r, v) for g, r, v in granted if r != "statefulsets"} == {
        (g, r, v) for g, r, v in used if r != "statefulsets"}


@pytest.mark.parametrize("content", ["garbage: [\n", "- a list\n", "\x00\xff"])
def test_a_broken_kubeconfig_is_unusable_not_a_traceback(
        content: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(DriverUnavailable, match="unusable"):
        make_driver().resolve("kubernetes.scale", {"name": "web", "namespace": "default"})

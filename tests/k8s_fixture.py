"""A small stateful fake Kubernetes API over real HTTP, built on kmock's emulator.

kmock stores objects and serves create/read/patch/delete/list; this fixture adds what
the driver needs and kmock leaves out:

* label selectors filter lists (kmock returns every object);
* `/version/` with the trailing slash the official client asks for;
* a controller: Deployments own a ReplicaSet, the ReplicaSet owns pods; a deleted pod is
  replaced by a new one that turns Ready after `ready_delay`, and scale is followed;
* API faults on demand: an HTTP status (401, 403, 409, 500, ...) or a slow answer.

It runs in a background thread with its own event loop, because the code under test
(the kubernetes client, the engine's `asyncio.run`) is synchronous from the test's side.

    with FakeCluster() as cluster:
        cluster.add_deployment("web", replicas=3)
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrs
import kmock
import pytest
import yaml

PODS = kmock.resource("", "v1", "pods")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
REPLICASETS = kmock.resource("apps", "v1", "replicasets")
STATEFULSETS = kmock.resource("apps", "v1", "statefulsets")
POLICIES = kmock.resource("networking.k8s.io", "v1", "networkpolicies")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
RESOURCES = {PODS: "v1/pods", CONFIGMAPS: "v1/configmaps", DEPLOYMENTS: "apps/v1/deployments",
             REPLICASETS: "apps/v1/replicasets", STATEFULSETS: "apps/v1/statefulsets",
             POLICIES: "networking.k8s.io/v1/networkpolicies"}
VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake", "gitCommit": "0",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22",
           "compiler": "gc", "platform": "linux/amd64"}


@dataclass
class Fault:
    """Answer requests whose method and path match with `status` (or after `delay`)."""

    method: str
    path: re.Pattern[str]
    status: int = 0
    delay: float = 0.0
    times: int | None = None


def selector_matches(selector: str, labels: dict[str, Any]) -> bool:
    """Equality- and set-based label selectors, as the API server reads them."""
    labels = {k: v for k, v in labels.items() if v is not None}
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector or ""):
        term = term.strip()
        if not term:
            continue
        if match := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            key, op, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
            inside = key in labels and str(labels[key]) in values
            if inside != (op == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if str(labels.get(key.strip())) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if str(labels.get(key.strip())) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the injected API faults."""

    faults: list[Fault] = attrs.field(factory=list)

    async def _handle(self, request: kmock.Request) -> Any:
        for fault in self.faults:
            if fault.times == 0 or fault.method not in (request.method.value, "*") \
                    or not fault.path.search(request.url.path):
                continue
            if fault.times is not None:
                fault.times -= 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                raise kmock.KubernetesError(status=fault.status, reason="Injected",
                                            message=f"injected {fault.status} by the test")
        return await super()._handle(request)


class FakeCluster:
    """The fake API server and its controller. See the module docstring."""

    def __init__(self, ready_delay: float = 0.2, tick: float = 0.05) -> None:
        self.ready_delay = ready_delay
        self.tick = tick
        self.controller_running = True
        self.url = ""
        self._names = itertools.count(1)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-k8s")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.api: _Emulator | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeCluster:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Kubernetes API did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        async with _Emulator() as api, kmock.Server(api, host="127.0.0.1") as server:
            for name in RESOURCES.values():
                api.resources[name] = {}
            api["get /version/"] << (lambda: VERSION)
            api[kmock.action.LIST] << self._list
            self.api, self.url = api, str(server.url).rstrip("/")
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            controller = asyncio.create_task(self._control())
            self._ready.set()
            await self._stop.wait()
            controller.cancel()

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run `fn` on the server's loop (the objects live there) and return its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # --- what kmock leaves out -----------------------------------------------------------

    def _list(self, request: kmock.Request) -> dict[str, Any]:
        selector = request.params.get("labelSelector", "")
        items = [obj for (res, ns, _), obj in self._objects(request.resource)
                 if request.namespace in (None, ns)
                 and selector_matches(selector, (obj.get("metadata") or {}).get("labels") or {})]
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                "items": items}

    def _objects(self, resource: Any) -> list[tuple[tuple[Any, str, str], dict[str, Any]]]:
        assert self.api is not None
        return [(key, obj.raw) for key, obj in list(self.api.objects.items())
                if key[0] == resource and not obj.deleted]

    async def _control(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.controller_running:
                self._reconcile(loop.time())
            await asyncio.sleep(self.tick)

    def _reconcile(self, now: float) -> None:
        for (_, ns, name), deployment in self._objects(DEPLOYMENTS):
            self._set(REPLICASETS, ns, f"{name}-rs", {"spec": {"replicas":
                                                               deployment["spec"]["replicas"]}})
        for (_, ns, name), replicaset in self._objects(REPLICASETS):
            pods = self._owned_pods(ns, replicaset)
            desired = replicaset["spec"]["replicas"]
            for _ in range(desired - len(pods)):
                self._new_pod(ns, replicaset, now)
            for pod in sorted(pods, key=lambda p: p["metadata"]["name"])[desired:]:
                self._delete(PODS, ns, pod["metadata"]["name"])
            for pod in pods:
                if pod["status"].get("readyAt", 0) <= now and not self._is_ready(pod):
                    self._set(PODS, ns, pod["metadata"]["name"], {"status": {
                        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
            ready = sum(1 for p in self._owned_pods(ns, replicaset) if self._is_ready(p))
            status = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready}
            self._set(REPLICASETS, ns, name, {"status": status})
            owner = name.removesuffix("-rs")
            if (DEPLOYMENTS, ns, owner) in self.api.objects:  # type: ignore[union-attr]
                self._set(DEPLOYMENTS, ns, owner, {"status": status})

    def _owned_pods(self, ns: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [pod for (_, pod_ns, _), pod in self._objects(PODS) if pod_ns == ns
                and any(r.get("uid") == uid for r in pod["metadata"].get("ownerReferences", []))]

    @staticmethod
    def _is_ready(pod: dict[str, Any]) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in pod.get("status", {}).get("conditions", []))

    def _new_pod(self, ns: str, owner: dict[str, Any], now: float,
                 ready: bool = False) -> None:
        assert self.api is not None
        name = f"{owner['metadata']['name'].removesuffix('-rs')}-{next(self._names):05d}"
        conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
        self.api.objects[PODS, ns, name] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                         "labels": dict(owner["spec"]["selector"]["matchLabels"]),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner["kind"],
                                              "name": owner["metadata"]["name"],
                                              "uid": owner["metadata"]["uid"],
                                              "controller": True}]},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running" if ready else "Pending", "conditions": conditions,
                       "readyAt": now + self.ready_delay}}

    def _set(self, resource: Any, ns: str, name: str, changes: dict[str, Any]) -> None:
        assert self.api is not None
        key = (resource, ns, name)
        obj = self.api.objects[key] if key in self.api.objects else None  # noqa: SIM401 (no .get)
        if obj is not None and not obj.deleted:
            obj.patch(changes)

    def _delete(self, resource: Any, ns: str, name: str) -> None:
        assert self.api is not None
        self.api.objects[resource, ns, name].delete()

    # --- what tests use ------------------------------------------------------------------

    def add_deployment(self, name: str, replicas: int = 3, namespace: str = "default",
                       labels: dict[str, str] | None = None) -> None:
        """A Deployment with its ReplicaSet and `replicas` pods, all Ready."""
        self._call(self._add_deployment, name, replicas, namespace, labels or {"app": name})

    def _add_deployment(self, name: str, replicas: int, ns: str, labels: dict[str, str]) -> None:
        assert self.api is not None
        selector = {"matchLabels": labels}
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                                   "labels": labels},
                      "spec": {"replicas": replicas, "selector": selector,
                               "template": {"metadata": {"labels": labels}}},
                      "status": {"replicas": replicas, "readyReplicas": replicas}}
        replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": {"name": f"{name}-rs", "namespace": ns,
                                   "uid": str(uuid.uuid4()), "labels": labels,
                                   "ownerReferences": [{"apiVersion": "apps/v1",
                                                        "kind": "Deployment", "name": name,
                                                        "uid": deployment["metadata"]["uid"],
                                                        "controller": True}]},
                      "spec": {"replicas": replicas, "selector": selector},
                      "status": {"replicas": replicas, "readyReplicas": replicas}}
        self.api.objects[DEPLOYMENTS, ns, name] = deployment
        self.api.objects[REPLICASETS, ns, f"{name}-rs"] = replicaset
        for _ in range(replicas):
            self._new_pod(ns, replicaset, 0.0, ready=True)

    def add_pod(self, name: str, namespace: str = "default",
                labels: dict[str, str] | None = None) -> None:
        """A bare pod without a controller."""
        def add() -> None:
            assert self.api is not None
            self.api.objects[PODS, namespace, name] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "labels": labels or {}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}, "status": {}}
        self._call(add)

    def pods(self, namespace: str = "default", selector: str = "") -> list[dict[str, Any]]:
        return [pod for (_, ns, _), pod in self._call(self._objects, PODS)
                if ns == namespace and selector_matches(selector, pod["metadata"]["labels"])]

    def ready_pods(self, namespace: str = "default", selector: str = "") -> int:
        return sum(1 for pod in self.pods(namespace, selector) if self._is_ready(pod))

    def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        for (_, ns, obj_name), obj in self._call(self._objects, resource):
            if ns == namespace and obj_name == name:
                return obj
        return None

    def policies(self, namespace: str = "default") -> list[dict[str, Any]]:
        return [obj for (_, ns, _), obj in self._call(self._objects, POLICIES) if ns == namespace]

    def fail(self, method: str, path: str, status: int = 0, delay: float = 0.0,
             times: int | None = None) -> Fault:
        """Make matching requests fail with `status` and/or answer after `delay` seconds."""
        assert self.api is not None
        fault = Fault(method.upper(), re.compile(path), status, delay, times)
        self.api.faults.append(fault)
        return fault

    def heal(self) -> None:
        assert self.api is not None
        self.api.faults.clear()

    def requests(self, method: str, path: str) -> int:
        """How many requests with this method reached a path matching the regex."""
        assert self.api is not None
        pattern = re.compile(path)
        return sum(1 for r in list(self.api._requests)
                   if r.method.value == method.upper() and pattern.search(r.url.path))

    def write_kubeconfig(self, path: Path, context: str = "fake",
                         namespace: str | None = None, token: str = "test-token") -> Path:
        """A kubeconfig with one cluster, user and context pointing at this server."""
        ctx: dict[str, Any] = {"cluster": "fake", "user": "tester"}
        if namespace:
            ctx["namespace"] = namespace
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}]}))
        return path



@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """A FakeCluster with Deployments `web` (3 replicas) and `db` (1), KUBECONFIG naming it."""
    with FakeCluster() as fake:
        fake.add_deployment("web", replicas=3)
        fake.add_deployment("db", replicas=1)
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        yield fake

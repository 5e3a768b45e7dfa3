"""Kubernetes: `kubernetes.delete_pod`, `kubernetes.scale`, `kubernetes.partition`.

Targets are `{namespace, selector, kind, name, context}`:

* `delete_pod` / `partition` hit pods: by `selector` (labels), by a workload's pods
  (`kind: Deployment|StatefulSet|ReplicaSet`, `name`), or one pod (`kind: Pod`, `name`).
* `scale` hits workloads: `kind` (default Deployment) with `name` or `selector`.
* `namespace` defaults to the kubeconfig context's namespace, else `default`;
  `kube-system` is refused unless the target names it.
* `context` picks a kubeconfig context; without kubeconfig the in-cluster service account
  is used (the CronJob in `deploy/`).

How each fault is taken back, from the handle alone (so `recover` works in a new process):

* delete_pod: the owning controller recreates the pod; revert waits, up to `timeout`,
  until the owner has its desired replicas ready again (excluding the deleted pod), and
  raises DriverError if it never does, so the run ends `rollback_incomplete`.
* scale: back to the exact replica count read just before scaling (the count seen at plan
  time when only the provisional handle exists).
* partition: a deny-all NetworkPolicy for ingress, egress or both, whose pod selector is a
  label put on the chosen pods. Policy name and label value derive from the handle key,
  so even a provisional handle names exactly what to delete; the policy is also labelled
  with the run id (`chaosrunner.io/run-id`) for people and `kubectl` to find.

The `kubernetes` client is imported only when the API is used (resolve, inject, revert),
never by `validate`. Reads ask for raw JSON (`_preload_content=False`): the generated
models are slow on large lists and reject partial objects. API errors are translated here:
401/403/5xx/timeouts -> DriverUnavailable, 404 -> TargetNotFound, 409 and the rest ->
DriverError, each naming the call, the object and what to do.

We call the official client directly rather than `chaosk8s` functions: those build a
client from global configuration on every call and flatten every API error into one
`ActivityFailed`, which would lose the 401/403/404/409 distinction and the previous
replica count that revert needs. `chaosk8s` activities run unchanged through the `python`
action and Chaos Toolkit experiments.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from chaosrunner.drivers.base import (
    DEADLINE_PARAM,
    JSON,
    BaseDriver,
    DriverContext,
    Handle,
    Instance,
    ParamError,
)
from chaosrunner.errors import (
    BlastRadiusExceeded,
    DriverError,
    DriverUnavailable,
    Refused,
    TargetNotFound,
)
from chaosrunner.spec.units import parse_duration

TARGET_KEYS = frozenset({"namespace", "selector", "kind", "name", "context"})
# kind -> the client's method suffix (read_namespaced_<suffix>, list_..., patch_...)
WORKLOADS = {"Deployment": "deployment", "StatefulSet": "stateful_set",
             "ReplicaSet": "replica_set"}
POD_KINDS = frozenset({"Pod", *WORKLOADS})
PROTECTED_NAMESPACE = "kube-system"
PARTITION_LABEL = "chaosrunner.io/partition"
RUN_LABEL = "chaosrunner.io/run-id"
KEY_LABEL = "chaosrunner.io/key"
FAULT_LABEL = "chaosrunner.io/fault"  # scale | partition: what `recover --kubernetes` lists
MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_ANNOTATION = "chaosrunner.io/run-id"
KEY_ANNOTATION = "chaosrunner.io/key"
DEADLINE_ANNOTATION = "chaosrunner.io/deadline"  # RFC 3339 UTC
PREVIOUS_ANNOTATION = "chaosrunner.io/previous-replicas"
POD_ANNOTATION = "chaosrunner.io/pod"  # the partitioned pod, whose label comes off too
DEFAULT_DEADLINE = 3600.0  # seconds after inject, when the engine gave none
DEFAULT_REVERT_TIMEOUT = 45.0  # below the engine's revert timeout (60 s), so ours reports
T = TypeVar("T")


def label_value(text: str) -> str:
    """`text` as a valid label value (<= 63 chars of [A-Za-z0-9_.-], alphanumeric ends)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-_.")
    if len(clean) <= 63:
        return clean or "x"
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{clean[:52].rstrip('-_.')}-{digest}"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def selector_string(selector: JSON) -> str:
    """`{app: web}` or `"app=web"` -> the API's label selector string."""
    if isinstance(selector, Mapping):
        return ",".join(f"{k}={v}" for k, v in selector.items())
    return str(selector)


def match_labels_selector(workload: Mapping[str, Any]) -> str:
    """A workload's pod selector (matchLabels and matchExpressions) as a selector string."""
    spec_selector = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in (spec_selector.get("matchLabels") or {}).items()]
    for expr in spec_selector.get("matchExpressions") or []:
        operator, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(values)})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def pod_ready(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_of(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return {"kind": ref.get("kind"), "name": ref.get("name"), "uid": ref.get("uid"),
                    "apiVersion": ref.get("apiVersion")}
    return None


class KubernetesDriver(BaseDriver):
    name: ClassVar[str] = "kubernetes"
    actions: ClassVar[frozenset[str]] = frozenset({"delete_pod", "scale", "partition"})
    accepts_deadline: ClassVar[bool] = True  # scaled workloads and policies carry it

    def __init__(self, context: DriverContext | None = None) -> None:
        super().__init__(context)
        self._clients: dict[str | None, Any] = {}
        self._default_namespaces: dict[str | None, str] = {}

    # --- validate ------------------------------------------------------------------------

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        verb = self.check_action(action)
        self._validate_target(verb, target)
        allowed = {"delete_pod": {"grace_period", "timeout"}, "scale": {"replicas"},
                   "partition": {"direction"}}[verb]
        for key in params:
            if key not in allowed:
                raise ParamError(("with", key), f"unknown parameter for kubernetes.{verb}; "
                                 f"allowed: {', '.join(sorted(allowed))}")
        return {"delete_pod": self._delete_params, "scale": self._scale_params,
                "partition": self._partition_params}[verb](params)

    @staticmethod
    def _validate_target(verb: str, target: Mapping[str, JSON]) -> None:
        unknown = set(target) - TARGET_KEYS
        if unknown:
            raise ParamError(("target", sorted(unknown)[0]), "unknown target key; kubernetes "
                             "targets have namespace, selector, kind, name, context")
        for key in ("namespace", "name", "context", "kind"):
            if key in target and not (isinstance(target[key], str) and target[key]):
                raise ParamError(("target", key), "must be a non-empty string")
        kind = str(target.get("kind", "Deployment" if verb == "scale" else "Pod"))
        kinds = set(WORKLOADS) if verb == "scale" else POD_KINDS
        if kind not in kinds:
            raise ParamError(("target", "kind"), f"kind {kind!r} is not supported by "
                             f"kubernetes.{verb}; use one of {', '.join(sorted(kinds))}")
        if ("name" in target) == ("selector" in target):
            raise ParamError(("target",), "give exactly one of name (with kind) or selector")
        if "selector" in target and "kind" in target and verb != "scale":
            raise ParamError(("target", "kind"), "with a selector, pods are selected by their "
                             "labels; drop kind or use kind + name")
        if "selector" in target:
            selector = target["selector"]
            if not (isinstance(selector, str) and selector.strip()) and not (
                    isinstance(selector, Mapping) and selector):
                raise ParamError(("target", "selector"), "a label selector: 'app=web' or "
                                 "{app: web}")

    @staticmethod
    def _delete_params(params: Mapping[str, JSON]) -> dict[str, JSON]:
        result: dict[str, JSON] = {"timeout": DEFAULT_REVERT_TIMEOUT}
        for key in ("grace_period", "timeout"):
            if key in params:
                try:
                    result[key] = parse_duration(params[key])
                except ValueError as exc:
                    raise ParamError(("with", key), str(exc)) from None
        if "grace_period" in result:
            result["grace_period"] = int(float(result["grace_period"]))
        return result

    @staticmethod
    def _scale_params(params: Mapping[str, JSON]) -> dict[str, JSON]:
        replicas = params.get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ParamError(("with", "replicas"), "replicas is a whole number >= 0")
        return {"replicas": replicas}

    @staticmethod
    def _partition_params(params: Mapping[str, JSON]) -> dict[str, JSON]:
        direction = params.get("direction", "both")
        if direction not in ("ingress", "egress", "both"):
            raise ParamError(("with", "direction"), "direction is ingress, egress or both")
        return {"direction": direction}

    def check_namespaces(self, target: Mapping[str, JSON], allowed: tuple[str, ...]) -> None:
        """Refuse a target outside `blast_radius.namespaces` (called by plan)."""
        namespace = self._namespace(target)
        if namespace not in allowed:
            raise BlastRadiusExceeded(
                f"kubernetes target in namespace {namespace!r} is outside "
                f"blast_radius.namespaces ({', '.join(allowed)}); add it there or change the "
                "target's namespace")

    # --- configuration -------------------------------------------------------------------

    def _client(self, context: str | None) -> Any:
        if context not in self._clients:
            self._clients[context] = self._new_client(context)
        return self._clients[context]

    def _new_client(self, context: str | None) -> Any:
        import yaml
        from kubernetes import client, config

        configuration = client.Configuration()
        kubeconfig = self._kubeconfig_path()
        try:
            if kubeconfig is not None:
                config.load_kube_config(config_file=str(kubeconfig), context=context,
                                        client_configuration=configuration,
                                        persist_config=False)  # type: ignore[no-untyped-call]
            elif context is not None:
                raise DriverUnavailable(f"target names kubeconfig context {context!r} but no "
                                        "kubeconfig was found; set KUBECONFIG")
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration)
            else:
                raise DriverUnavailable("no Kubernetes configuration: set KUBECONFIG (or have "
                                        "~/.kube/config), or run inside a pod with a service "
                                        "account")
        except (config.ConfigException, yaml.YAMLError, OSError, TypeError, AttributeError,
                ValueError) as exc:          # a kubeconfig that is not YAML or not a mapping
            where = kubeconfig or "in-cluster service account"
            raise DriverUnavailable(f"Kubernetes configuration from {where} is unusable: "
                                    f"{exc}") from None
        # One quick retry for a dropped connection; timeouts are ours (api_timeout).
        configuration.retries = 1
        return client.ApiClient(configuration)

    @staticmethod
    def _kubeconfig_path() -> Path | None:
        raw = os.environ.get("KUBECONFIG")
        candidates = raw.split(os.pathsep) if raw else [str(Path.home() / ".kube" / "config")]
        for candidate in candidates:
            if candidate and Path(candidate).expanduser().is_file():
                return Path(candidate).expanduser()
        return None

    def _namespace(self, target: Mapping[str, JSON]) -> str:
        if "namespace" in target:
            return str(target["namespace"])
        context = target.get("context")
        key = str(context) if context is not None else None
        if key not in self._default_namespaces:
            self._default_namespaces[key] = self._context_namespace(key)
        namespace = self._default_namespaces[key]
        if namespace == PROTECTED_NAMESPACE:
            raise Refused(f"the kubeconfig context's default namespace is {PROTECTED_NAMESPACE};"
                          f" name `namespace: {PROTECTED_NAMESPACE}` in the target if you really "
                          "mean to inject faults there")
        return namespace

    def _context_namespace(self, context: str | None) -> str:
        kubeconfig = self._kubeconfig_path()
        if kubeconfig is None:
            path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            return path.read_text().strip() if path.is_file() else "default"
        from kubernetes import config

        try:
            contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                str(kubeconfig))
        except config.ConfigException:
            return "default"
        chosen = next((c for c in contexts if c.get("name") == context), None) \
            if context else current
        return str(((chosen or {}).get("context") or {}).get("namespace") or "default")

    # --- API calls with errors translated ------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=self.context.api_timeout, **kwargs)
        except ApiException as exc:
            raise api_error(what, exc.status, exc.reason, exc.body) from None
        except (HTTPError, OSError) as exc:
            raise DriverUnavailable(f"Kubernetes API unreachable while trying to {what}: "
                                    f"{type(exc).__name__}: {exc}; check the server address "
                                    "in the kubeconfig and the network") from None

    def _read(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        response = self._call(what, fn, *args, _preload_content=False, **kwargs)
        return json.loads(response.data)

    def _apis(self, target: Mapping[str, JSON]) -> tuple[Any, Any, Any]:
        from kubernetes import client

        context = target.get("context")
        api = self._client(str(context) if context else None)
        return client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)

    # The same client, configuration and error translation for the other parts of
    # chaosrunner that talk to the cluster (the halt ConfigMap, `recover --kubernetes`).
    def apis(self, context: str | None = None) -> tuple[Any, Any, Any]:
        """(CoreV1Api, AppsV1Api, NetworkingV1Api) of the kubeconfig context."""
        return self._apis({"context": context} if context else {})

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._call(what, fn, *args, **kwargs)

    def read(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._read(what, fn, *args, **kwargs)

    # --- resolve -------------------------------------------------------------------------

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        verb = self.check_action(action)
        namespace = self._namespace(target)
        if verb == "scale":
            return [self._workload_instance(w, target) for w in self._workloads(target,
                                                                                  namespace)]
        pods = [p for p in self._pods(target, namespace)
                if not (p.get("metadata") or {}).get("deletionTimestamp")]
        if verb == "delete_pod":
            orphans = [p["metadata"]["name"] for p in pods if controller_of(p) is None]
            if orphans:
                raise Refused(f"pods {', '.join(orphans[:5])} in {namespace} have no controller"
                              ": deleting them would lose them for good; target pods of a "
                              "Deployment, StatefulSet or ReplicaSet")
        return [self._pod_instance(p, target) for p in pods]

    def _pods(self, target: Mapping[str, JSON], namespace: str) -> list[dict[str, Any]]:
        core, apps, _ = self._apis(target)
        kind = str(target.get("kind", "Pod"))
        if "selector" in target:
            selector = selector_string(target["selector"])
        elif kind == "Pod":
            pod = self._read(f"read pod {namespace}/{target['name']}",
                             core.read_namespaced_pod, target["name"], namespace)
            return [pod]
        else:
            workload = self._read_workload(apps, kind, str(target["name"]), namespace)
            selector = match_labels_selector(workload)
        listing = self._read(f"list pods in {namespace} matching {selector!r}",
                             core.list_namespaced_pod, namespace, label_selector=selector)
        return list(listing.get("items") or [])

    def _workloads(self, target: Mapping[str, JSON], namespace: str) -> list[dict[str, Any]]:
        _, apps, _ = self._apis(target)
        kind = str(target.get("kind", "Deployment"))
        if "name" in target:
            return [self._read_workload(apps, kind, str(target["name"]), namespace)]
        lister = getattr(apps, f"list_namespaced_{WORKLOADS[kind]}")
        selector = selector_string(target["selector"])
        listing = self._read(f"list {kind}s in {namespace} matching {selector!r}",
                             lister, namespace, label_selector=selector)
        return [{**item, "kind": kind} for item in listing.get("items") or []]

    def _read_workload(self, apps: Any, kind: str, name: str, namespace: str) -> dict[str, Any]:
        reader = getattr(apps, f"read_namespaced_{WORKLOADS[kind]}")
        workload: dict[str, Any] = self._read(f"read {kind} {namespace}/{name}", reader, name,
                                              namespace)
        return {**workload, "kind": kind}

    def _pod_instance(self, pod: Mapping[str, Any], target: Mapping[str, JSON]) -> Instance:
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        return Instance("kubernetes", str(meta.get("uid") or f"{namespace}/{name}"),
                        f"pod {namespace}/{name}",
                        {"namespace": namespace, "pod": name, "uid": meta.get("uid"),
                         "owner": controller_of(pod), "context": target.get("context")})

    def _workload_instance(self, workload: Mapping[str, Any],
                           target: Mapping[str, JSON]) -> Instance:
        meta = workload.get("metadata") or {}
        namespace, name, kind = str(meta.get("namespace")), str(meta.get("name")), \
            str(workload["kind"])
        replicas = int((workload.get("spec") or {}).get("replicas", 1))
        return Instance("kubernetes", f"{kind}/{namespace}/{name}",
                        f"{kind.lower()} {namespace}/{name}",
                        {"namespace": namespace, "kind": kind, "name": name,
                         "replicas": replicas, "context": target.get("context")})

    # --- inject --------------------------------------------------------------------------

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        verb = self.check_action(action)
        handle = Handle(action, instance, key, dict(params))
        if verb == "delete_pod":
            return self._delete_pod(handle)
        if verb == "scale":
            return self._scale(handle)
        return self._partition(handle)

    def _delete_pod(self, handle: Handle) -> Handle:
        core, _, _ = self._apis(handle.instance.attrs)
        attrs = handle.instance.attrs
        grace = handle.params.get("grace_period")
        self._call(f"delete pod {attrs['namespace']}/{attrs['pod']}",
                   core.delete_namespaced_pod, attrs["pod"], attrs["namespace"],
                   grace_period_seconds=None if grace is None else int(grace))
        return handle.with_data(deleted=True)

    def _scale(self, handle: Handle) -> Handle:
        _, apps, _ = self._apis(handle.instance.attrs)
        attrs = handle.instance.attrs
        kind, name, namespace = str(attrs["kind"]), str(attrs["name"]), str(attrs["namespace"])
        current = self._read_workload(apps, kind, name, namespace)
        previous = int((current.get("spec") or {}).get("replicas", 1))
        # Already scaled by a run that never came back: the count before *that* is the one
        # to restore, and it is on the workload.
        earlier = annotations_of(current).get(PREVIOUS_ANNOTATION)
        if earlier is not None and earlier.isdigit():
            previous = int(earlier)
        marks = self._marks(handle, "scale", {PREVIOUS_ANNOTATION: str(previous)})
        self._set_replicas(apps, kind, name, namespace, int(handle.params["replicas"]), marks)
        return handle.with_data(previous=previous)

    def _set_replicas(self, apps: Any, kind: str, name: str, namespace: str,
                      replicas: int, metadata: Mapping[str, Any] | None = None) -> None:
        patcher = getattr(apps, f"patch_namespaced_{WORKLOADS[kind]}")
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        self._call(f"scale {kind} {namespace}/{name} to {replicas}", patcher, name, namespace,
                   body)

    def _marks(self, handle: Handle, fault: str, annotations: Mapping[str, str]
               ) -> dict[str, Any]:
        """Labels and annotations that let `recover --kubernetes` find and undo the fault
        without the runner: run id, key, deadline and the state before."""
        deadline = handle.params.get(DEADLINE_PARAM)
        at = float(deadline) if isinstance(deadline, int | float) else \
            time.time() + DEFAULT_DEADLINE
        return {"labels": {MANAGED_BY: "chaosrunner", FAULT_LABEL: fault,
                           RUN_LABEL: label_value(self.context.run_id),
                           KEY_LABEL: key_digest(handle.key)},
                "annotations": {RUN_ANNOTATION: self.context.run_id,
                                KEY_ANNOTATION: handle.key,
                                DEADLINE_ANNOTATION: rfc3339(at), **annotations}}

    def _partition(self, handle: Handle) -> Handle:
        core, _, net = self._apis(handle.instance.attrs)
        attrs = handle.instance.attrs
        namespace, pod, digest = str(attrs["namespace"]), str(attrs["pod"]), \
            key_digest(handle.key)
        # Policy first, label second: the policy selects nothing until the pod carries the
        # label, so a crash in between leaves no pod cut off.
        body = self._policy(handle, digest)
        self._call(f"create NetworkPolicy {body['metadata']['name']} in {namespace}",
                   net.create_namespaced_network_policy, namespace, body)
        self._call(f"label pod {namespace}/{pod}", core.patch_namespaced_pod, pod, namespace,
                   {"metadata": {"labels": {PARTITION_LABEL: digest}}})
        return handle.with_data(policy=body["metadata"]["name"], label=digest)

    def _policy(self, handle: Handle, digest: str) -> dict[str, Any]:
        direction = handle.params.get("direction", "both")
        types = {"ingress": ["Ingress"], "egress": ["Egress"],
                 "both": ["Ingress", "Egress"]}[str(direction)]
        # No rules with these policyTypes: all ingress and/or egress is denied.
        marks = self._marks(handle, "partition",
                            {POD_ANNOTATION: str(handle.instance.attrs["pod"])})
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": f"chaosrunner-partition-{digest}",
                             "namespace": handle.instance.attrs["namespace"], **marks},
                "spec": {"podSelector": {"matchLabels": {PARTITION_LABEL: digest}},
                         "policyTypes": types}}

    def settle_seconds(self, handle: Handle) -> float | None:
        """A delete or scale the API server accepted goes on without us (the controllers act
        on it); a request still in flight at a crash may land up to the API timeout later."""
        return self.context.api_timeout if handle.verb in ("delete_pod", "scale") else None

    # --- revert --------------------------------------------------------------------------

    def revert(self, handle: Handle) -> None:
        verb = handle.verb
        if verb == "delete_pod":
            self._wait_replaced(handle)
        elif verb == "scale":
            self._scale_back(handle)
        elif verb == "partition":
            self._unpartition(handle)
        else:
            raise DriverError(f"cannot revert unknown action {handle.action!r}")

    def _scale_back(self, handle: Handle) -> None:
        _, apps, _ = self._apis(handle.instance.attrs)
        attrs = handle.instance.attrs
        kind, name, namespace = str(attrs["kind"]), str(attrs["name"]), str(attrs["namespace"])
        try:
            current = self._read_workload(apps, kind, name, namespace)
        except TargetNotFound:
            return  # the workload was deleted: nothing left to scale back
        marked = annotations_of(current)
        previous = int(handle.data.get("previous", attrs["replicas"]))
        if marked.get(KEY_ANNOTATION) in (None, handle.key):
            # Ours (or no marks): back to the count before, and the marks come off.
            earlier = marked.get(PREVIOUS_ANNOTATION)
            if "previous" not in handle.data and earlier is not None and earlier.isdigit():
                previous = int(earlier)  # a provisional handle: the workload knows better
            self._set_replicas(apps, kind, name, namespace, previous, UNMARK)
        else:
            # Scaled again by another run since: its marks stay for its own revert.
            self._set_replicas(apps, kind, name, namespace, previous)

    def _unpartition(self, handle: Handle) -> None:
        core, _, net = self._apis(handle.instance.attrs)
        attrs = handle.instance.attrs
        namespace, pod, digest = str(attrs["namespace"]), str(attrs["pod"]), \
            key_digest(handle.key)
        name = f"chaosrunner-partition-{digest}"
        # Not found is fine: never created or already deleted; a pod that is gone took
        # its label with it, and its replacement never had one.
        with contextlib.suppress(TargetNotFound):
            self._call(f"delete NetworkPolicy {namespace}/{name}",
                       net.delete_namespaced_network_policy, name, namespace)
        with contextlib.suppress(TargetNotFound):
            # A merge patch with null removes the label.
            self._call(f"unlabel pod {namespace}/{pod}", core.patch_namespaced_pod, pod,
                       namespace, {"metadata": {"labels": {PARTITION_LABEL: None}}})

    def _wait_replaced(self, handle: Handle) -> None:
        """Wait until the deleted pod's controller has its desired replicas ready again."""
        attrs = handle.instance.attrs
        owner = attrs.get("owner")
        if not owner:
            return
        timeout = float(handle.params.get("timeout", DEFAULT_REVERT_TIMEOUT))
        deadline = time.monotonic() + timeout
        ready, desired = 0, None
        while True:
            state = self._owner_state(handle, owner)
            if state is None:
                return  # the controller itself is gone: nothing will come back to wait for
            ready, desired = state
            if ready >= desired:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.05, timeout / 50)))
        raise DriverError(
            f"{owner['kind']} {attrs['namespace']}/{owner['name']} has {ready} of {desired} "
            f"replicas ready {timeout:g}s after pod {attrs['pod']} was deleted; check the "
            "workload (image pulls, scheduling, quotas), then run `chaosrunner recover`")

    def _owner_state(self, handle: Handle, owner: Mapping[str, Any]) -> tuple[int, int] | None:
        core, apps, _ = self._apis(handle.instance.attrs)
        namespace, kind = str(handle.instance.attrs["namespace"]), str(owner["kind"])
        if kind not in WORKLOADS:
            return None  # a custom controller: we cannot tell its desired count
        try:
            workload = self._read_workload(apps, kind, str(owner["name"]), namespace)
        except TargetNotFound:
            return None
        desired = int((workload.get("spec") or {}).get("replicas", 1))
        selector = match_labels_selector(workload)
        listing = self._read(f"list pods of {kind} {namespace}/{owner['name']}",
                             core.list_namespaced_pod, namespace, label_selector=selector)
        ready = sum(1 for pod in listing.get("items") or []
                    if pod_ready(pod) and (pod.get("metadata") or {}).get("uid")
                    != handle.instance.attrs.get("uid")
                    and (controller_of(pod) or {}).get("uid") == owner.get("uid"))
        return ready, desired

    def health(self) -> None:
        from kubernetes import client

        self._read("read the server version", client.VersionApi(self._client(None)).get_code)


def api_error(what: str, status: int | None, reason: str | None, body: Any) -> DriverError:
    """An API error status as the runner's error, saying what to do."""
    message = _status_message(body) or reason or ""
    detail = f"Kubernetes API refused to {what}: {status} {message}".rstrip()
    if status == 401:
        return DriverUnavailable(f"{detail}; the credentials were rejected: refresh the "
                                 "token or client certificate in the kubeconfig")
    if status == 403:
        return DriverUnavailable(f"{detail}; the service account lacks this permission: "
                                 "grant the verbs in deploy/rbac.yaml in this namespace")
    if status == 404:
        return TargetNotFound(f"{detail}; check the namespace, kind and name")
    if status == 409:
        return DriverError(f"{detail}; the object changed or already exists (conflict): "
                           "retry, or run `chaosrunner recover` if a previous run left it")
    if status is not None and status >= 500:
        return DriverUnavailable(f"{detail}; the API server failed: retry later")
    if status == 0 or status is None:
        return DriverUnavailable(f"{detail}; no answer from the API server")
    return DriverError(detail)


def _status_message(body: Any) -> str | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    return str(message) if message else None


# Merge-patch metadata that takes chaosrunner's marks off a workload (null removes a key).
UNMARK: dict[str, Any] = {
    "labels": {FAULT_LABEL: None, RUN_LABEL: None, KEY_LABEL: None},
    "annotations": {RUN_ANNOTATION: None, KEY_ANNOTATION: None, DEADLINE_ANNOTATION: None,
                    PREVIOUS_ANNOTATION: None}}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def rfc3339(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

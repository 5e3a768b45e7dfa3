"""`chaosrunner recover --kubernetes [--namespace N]`: take back what chaosrunner left in a
cluster past its deadline, whoever left it (a runner and its watchdog on a machine that is
gone), from the marks the `kubernetes` driver puts on what it changes:

* a scaled Deployment/StatefulSet/ReplicaSet carries the labels `chaosrunner.io/fault:
  scale`, run id and key, and the annotations `chaosrunner.io/previous-replicas`,
  `chaosrunner.io/deadline`, run id and key: it is scaled back to the previous count and
  the marks come off;
* a partition NetworkPolicy carries `chaosrunner.io/fault: partition`, the deadline and the
  pod it cuts off (`chaosrunner.io/pod`): it is deleted and the pod's label removed.

Only what is past its deadline is touched (a live run's faults are its own), and every step
is idempotent: a second sweep finds nothing, so the CronJob in deploy/ runs it every minute.
A mark without a readable deadline counts as expired.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from chaosrunner.drivers.kubernetes import (
    DEADLINE_ANNOTATION,
    FAULT_LABEL,
    KEY_ANNOTATION,
    PARTITION_LABEL,
    POD_ANNOTATION,
    PREVIOUS_ANNOTATION,
    RUN_ANNOTATION,
    UNMARK,
    WORKLOADS,
    KubernetesDriver,
    annotations_of,
)
from chaosrunner.errors import ChaosRunnerError, TargetNotFound


@dataclass(frozen=True)
class Swept:
    """One marked object and what the sweep did with it."""

    kind: str
    namespace: str
    name: str
    action: str  # kubernetes.scale | kubernetes.partition
    run_id: str | None
    key: str | None
    deadline: str | None
    status: str  # reverted | failed | pending (deadline not reached)
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sweep(driver: KubernetesDriver, namespace: str | None, now: float) -> list[Swept]:
    """Revert every chaosrunner mark past its deadline in `namespace` (None: all)."""
    core, apps, net = driver.apis()
    results: list[Swept] = []
    for kind, suffix in WORKLOADS.items():
        for item in _marked(driver, apps, suffix, namespace, "scale"):
            results.append(_settle(item, kind, "kubernetes.scale", now,
                                   lambda obj, k=kind: _scale_back(driver, apps, k, obj)))
    for item in _marked(driver, net, "network_policy", namespace, "partition"):
        results.append(_settle(item, "NetworkPolicy", "kubernetes.partition", now,
                               lambda obj: _unpartition(driver, core, net, obj)))
    return results


def _marked(driver: KubernetesDriver, api: Any, suffix: str, namespace: str | None,
            fault: str) -> list[dict[str, Any]]:
    selector = f"{FAULT_LABEL}={fault}"
    where = f"namespace {namespace}" if namespace else "all namespaces"
    what = f"list {suffix.replace('_', ' ')}s marked {selector} in {where}"
    if namespace:
        data = driver.read(what, getattr(api, f"list_namespaced_{suffix}"), namespace,
                           label_selector=selector)
    else:
        data = driver.read(what, getattr(api, f"list_{suffix}_for_all_namespaces"),
                           label_selector=selector)
    return list(data.get("items") or [])


def _settle(obj: dict[str, Any], kind: str, action: str, now: float, revert: Any) -> Swept:
    meta = obj.get("metadata") or {}
    notes = annotations_of(obj)
    deadline = notes.get(DEADLINE_ANNOTATION)
    found = Swept(kind, str(meta.get("namespace")), str(meta.get("name")), action,
                  notes.get(RUN_ANNOTATION), notes.get(KEY_ANNOTATION), deadline, "pending")
    if not expired(deadline, now):
        return found
    try:
        revert(obj)
    except ChaosRunnerError as exc:
        return replace(found, status="failed", detail=str(exc))
    return replace(found, status="reverted")


def expired(deadline: str | None, now: float) -> bool:
    if not deadline:
        return True
    try:
        return datetime.fromisoformat(deadline.replace("Z", "+00:00")).timestamp() <= now
    except ValueError:
        return True


def _scale_back(driver: KubernetesDriver, apps: Any, kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    previous = annotations_of(obj).get(PREVIOUS_ANNOTATION)
    if previous is None or not previous.isdigit():
        raise ChaosRunnerError(f"{kind} {meta['namespace']}/{meta['name']} is marked scaled "
                               f"but has no {PREVIOUS_ANNOTATION} annotation; set its replicas "
                               "by hand and remove the chaosrunner.io labels")
    patch = getattr(apps, f"patch_namespaced_{WORKLOADS[kind]}")
    with contextlib.suppress(TargetNotFound):  # deleted since: nothing to scale back
        driver.call(f"scale {kind} {meta['namespace']}/{meta['name']} back to {previous}",
                    patch, meta["name"], meta["namespace"],
                    {"spec": {"replicas": int(previous)}, "metadata": UNMARK})


def _unpartition(driver: KubernetesDriver, core: Any, net: Any, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    pod = annotations_of(obj).get(POD_ANNOTATION)
    if pod:  # label off first: the pod is reachable again even if the delete fails
        with contextlib.suppress(TargetNotFound):
            driver.call(f"unlabel pod {namespace}/{pod}", core.patch_namespaced_pod, pod,
                        namespace, {"metadata": {"labels": {PARTITION_LABEL: None}}})
    with contextlib.suppress(TargetNotFound):
        driver.call(f"delete NetworkPolicy {namespace}/{name}",
                    net.delete_namespaced_network_policy, name, namespace)

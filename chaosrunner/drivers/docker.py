"""Instance loss through Docker: `docker.kill`, `.stop`, `.pause`, `.restart` (DESIGN.md 3).

Targets (exactly one kind per fault):

    {container: NAME}                       a container by name or id
    {label: app=payments}                   labels; a list means all must match
    {name_regex: "^shop-payments-\\d+$"}    re.search on the container name
    {compose_service: payments, project: P} a docker-compose service (project optional)

Only running (and not paused) containers count as instances; `Instance.id` is the full
container id, so a container recreated under the same name is never mistaken for the one
that was hit. `select` and `blast_radius` are the engine's business: `resolve` returns all
that match.

Parameters (`with:`):

    kill     signal (default SIGKILL), restart_after, ready_timeout
    stop     grace_period (default 10s), restart_after, ready_timeout
    pause    ready_timeout
    restart  grace_period (default 10s), ready_timeout

`revert` starts (kill, stop, restart) or unpauses (pause) the one container in the handle
and waits, at most `ready_timeout` (default 60s), until it runs again — and is healthy
when the container has a healthcheck. It reads the container's state instead of trusting
the handle, which makes it idempotent and lets it take a provisional handle: a container
that still runs was either never hit or already restored.

The `docker` package (docker-py) is imported only when the driver talks to the engine,
and its exceptions are translated here: engine unreachable or socket permission denied
-> DriverUnavailable; a container that vanished -> TargetNotFound; anything else the
engine refuses -> DriverError.
"""

from __future__ import annotations

import math
import os
import re
import signal as signal_module
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from chaosrunner.drivers.base import JSON, BaseDriver, Handle, Instance, ParamError
from chaosrunner.errors import DriverError, DriverUnavailable, TargetNotFound
from chaosrunner.spec.units import parse_duration

TARGET_KINDS = ("container", "label", "name_regex", "compose_service")
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

DEFAULT_GRACE_PERIOD = 10.0
DEFAULT_READY_TIMEOUT = 60.0
POLL_INTERVAL = 0.1

_PARAMS: dict[str, frozenset[str]] = {
    "kill": frozenset({"signal", "restart_after", "ready_timeout"}),
    "stop": frozenset({"grace_period", "restart_after", "ready_timeout"}),
    "pause": frozenset({"ready_timeout"}),
    "restart": frozenset({"grace_period", "ready_timeout"}),
}
_LABEL = re.compile(r"^[^=\s]+(=.*)?$")


@dataclass(frozen=True)
class ContainerQuery:
    """A validated target: how to find the containers it means."""

    container: str | None = None
    labels: tuple[str, ...] = ()
    name_regex: re.Pattern[str] | None = None

    def describe(self) -> str:
        if self.container is not None:
            return f"container {self.container!r}"
        if self.name_regex is not None:
            return f"name_regex {self.name_regex.pattern!r}"
        return "label " + " and ".join(self.labels)


def parse_target(target: Mapping[str, JSON]) -> ContainerQuery:
    """The query a target mapping means; ParamError with the key path when it is wrong.

    >>> parse_target({"label": ["app=payments", "tier=backend"]}).labels
    ('app=payments', 'tier=backend')
    """
    kinds = [kind for kind in TARGET_KINDS if kind in target]
    unknown = sorted(set(target) - {*TARGET_KINDS, "project"})
    if unknown:
        raise ParamError(("target", unknown[0]),
                         f"unknown docker target key {unknown[0]!r}; "
                         f"use one of {', '.join(TARGET_KINDS)}")
    if len(kinds) != 1:
        raise ParamError(("target",),
                         "a docker target needs exactly one of "
                         f"{', '.join(TARGET_KINDS)}; got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if "project" in target and kind != "compose_service":
        raise ParamError(("target", "project"), "'project' only goes with compose_service")
    value = target[kind]
    if kind == "container":
        return ContainerQuery(container=_non_empty_string(value, ("target", kind)))
    if kind == "label":
        return ContainerQuery(labels=_labels(value))
    if kind == "name_regex":
        pattern = _non_empty_string(value, ("target", kind))
        try:
            return ContainerQuery(name_regex=re.compile(pattern))
        except re.error as exc:
            raise ParamError(("target", kind),
                             f"name_regex {pattern!r} is not a valid regular expression: "
                             f"{exc}") from None
    service = _non_empty_string(value, ("target", kind))
    labels = [f"{COMPOSE_SERVICE_LABEL}={service}"]
    if "project" in target:
        project = _non_empty_string(target["project"], ("target", "project"))
        labels.append(f"{COMPOSE_PROJECT_LABEL}={project}")
    return ContainerQuery(labels=tuple(labels))


def _non_empty_string(value: JSON, key_path: tuple[str | int, ...]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParamError(key_path, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _labels(value: JSON) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ParamError(("target", "label"), "expected at least one label such as app=payments")
    labels = []
    for index, item in enumerate(items):
        path: tuple[str | int, ...] = ("target", "label", index) if isinstance(
            value, list | tuple) else ("target", "label")
        if not isinstance(item, str) or not _LABEL.match(item.strip()):
            raise ParamError(path, f"expected a label as key=value (or key), got {item!r}")
        labels.append(item.strip())
    return tuple(labels)


def normalise_signal(value: JSON) -> str:
    """'SIGKILL' from 'SIGKILL', 'kill', 'KILL' or 9; ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a signal name such as SIGTERM, got {value!r}")
    try:
        if isinstance(value, int):
            return signal_module.Signals(value).name
        if isinstance(value, str):
            text = value.strip().upper()
            if text.isdigit():
                return signal_module.Signals(int(text)).name
            name = text if text.startswith("SIG") else f"SIG{text}"
            return signal_module.Signals[name].name
    except (KeyError, ValueError):
        pass
    raise ValueError(f"unknown signal {value!r}; use a name such as SIGKILL or SIGTERM")


def _duration_param(params: Mapping[str, JSON], key: str, default: float | None,
                    ) -> float | None:
    if key not in params:
        return default
    try:
        seconds = parse_duration(params[key])
    except ValueError as exc:
        raise ParamError(("with", key), str(exc)) from None
    return seconds


class DockerDriver(BaseDriver):
    """Kill, stop, pause or restart containers of a Docker engine (DOCKER_HOST or the socket)."""

    name: ClassVar[str] = "docker"
    actions: ClassVar[frozenset[str]] = frozenset(_PARAMS)

    _api_version: str | None = None

    # --- validate / resolve ------------------------------------------------------------

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        """Check target and parameters; durations become seconds, the signal its name."""
        verb = self.check_action(action)
        parse_target(target)
        unknown = sorted(set(params) - _PARAMS[verb])
        if unknown:
            allowed = ", ".join(sorted(_PARAMS[verb])) or "none"
            raise ParamError(("with", unknown[0]),
                             f"unknown parameter {unknown[0]!r} for docker.{verb}; "
                             f"allowed: {allowed}")
        normal: dict[str, JSON] = {
            "ready_timeout": _duration_param(params, "ready_timeout", DEFAULT_READY_TIMEOUT)}
        if verb == "kill":
            try:
                normal["signal"] = normalise_signal(params.get("signal", "SIGKILL"))
            except ValueError as exc:
                raise ParamError(("with", "signal"), str(exc)) from None
        if verb in ("stop", "restart"):
            normal["grace_period"] = _duration_param(params, "grace_period",
                                                     DEFAULT_GRACE_PERIOD)
        if verb in ("kill", "stop") and "restart_after" in params:
            normal["restart_after"] = _duration_param(params, "restart_after", None)
        if float(normal["ready_timeout"]) <= 0:
            raise ParamError(("with", "ready_timeout"), "ready_timeout must be above 0s")
        return normal

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        """The running, unpaused containers the target matches now, sorted by name."""
        query = parse_target(target)
        with self._client(f"resolving {query.describe()}") as client:
            if query.container is not None:
                containers = self._by_name(client, query.container)
            else:
                filters: dict[str, Any] = {"status": "running"}
                if query.labels:
                    filters["label"] = list(query.labels)
                containers = client.containers.list(filters=filters)
            if query.name_regex is not None:
                pattern = query.name_regex
                containers = [c for c in containers if pattern.search(c.name)]
            running = [c for c in containers if _is_up(c.attrs.get("State"), c.status)]
            return sorted((_instance(c) for c in running), key=lambda i: (i.name, i.id))

    @staticmethod
    def _by_name(client: Any, name: str) -> list[Any]:
        import docker.errors

        try:
            return [client.containers.get(name)]
        except docker.errors.NotFound:
            return []

    # --- inject / revert ---------------------------------------------------------------

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        """Hit one container; the handle names it by id, so revert finds exactly it."""
        verb = self.check_action(action)
        what = f"docker.{verb} on {_label(instance)}"
        with self._client(what) as client:
            container = self._get(client, instance, what, vanished="between plan and inject")
            state = container.attrs.get("State") or {}
            if not _is_up(state, container.status):
                raise TargetNotFound(
                    f"{what}: the container is no longer running (status "
                    f"{state.get('Status', container.status)!r}) — it changed between plan "
                    "and inject; nothing was done to it")
            if verb in ("kill", "stop") and container.attrs.get(
                    "HostConfig", {}).get("AutoRemove"):
                raise DriverError(
                    f"{what}: refused, the container runs with --rm (AutoRemove) and would be "
                    "deleted, so it could never be started again; target containers that "
                    "are not auto-removed, or use docker.pause / docker.restart")
            self._hit(container, verb, params)
        return Handle.provisional(action, instance, params, key).with_data(
            injected=True, injected_at=time.time(), healthcheck=_has_healthcheck(container))

    @staticmethod
    def _hit(container: Any, verb: str, params: Mapping[str, JSON]) -> None:
        if verb == "kill":
            container.kill(signal=str(params.get("signal", "SIGKILL")))
        elif verb == "stop":
            container.stop(timeout=_whole_seconds(params.get("grace_period")))
        elif verb == "pause":
            container.pause()
        else:
            container.restart(timeout=_whole_seconds(params.get("grace_period")))

    def settle_seconds(self, handle: Handle) -> float | None:
        """The engine finishes a kill, stop or restart on its own once asked, a stop or
        restart only after the grace period; a pause is done when the call returns."""
        verb = handle.verb
        if verb == "kill":
            return 0.0
        if verb in ("stop", "restart"):
            return float(_whole_seconds(handle.params.get("grace_period")))
        return None

    def revert(self, handle: Handle) -> None:
        """Start or unpause the handle's container and wait until it runs (and is healthy).

        Idempotent, and safe with a provisional handle: it acts on the container's state,
        never on what the handle assumes happened.
        """
        verb = handle.verb
        what = f"reverting docker.{verb} on {_label(handle.instance)}"
        with self._client(what) as client:
            import docker.errors

            try:
                container = client.containers.get(handle.instance.id)
            except docker.errors.NotFound:
                self._vanished_on_revert(handle, what)
                return
            acted = self._restore(container, verb, what)
            if acted or handle.data.get("injected"):
                timeout = float(handle.params.get("ready_timeout") or DEFAULT_READY_TIMEOUT)
                self._wait_ready(container, what, timeout)

    @staticmethod
    def _vanished_on_revert(handle: Handle, what: str) -> None:
        # A provisional handle whose container is gone: the inject either never ran or
        # hit a container that no longer exists; there is nothing left to take back.
        if not handle.data.get("injected"):
            return
        undo = "unpause" if handle.verb == "pause" else "start"
        raise TargetNotFound(
            f"{what}: the container was removed while the fault was active, so there is "
            f"nothing left to {undo}; recreate it (for a compose service: "
            "`docker-compose up -d`) and check the service")

    @staticmethod
    def _restore(container: Any, verb: str, what: str) -> bool:
        """Undo the verb if the container still shows it; True when something was done."""
        container.reload()
        state = container.attrs.get("State") or {}
        if verb == "pause":
            if state.get("Paused"):
                container.unpause()
                return True
            return False
        if state.get("Running") or state.get("Restarting"):
            return False
        if state.get("Status") == "removing":
            raise TargetNotFound(f"{what}: the container is being removed; it cannot be started")
        container.start()
        return True

    @staticmethod
    def _wait_ready(container: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            container.reload()
            state = container.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if _is_up(state, container.status) and health in (None, "healthy"):
                return
            if time.monotonic() >= deadline:
                shown = state.get("Status", container.status)
                if health is not None:
                    shown += f", health {health}"
                raise DriverError(
                    f"{what}: the container was restored but is not ready after "
                    f"{timeout:g}s ({shown}); see `docker logs {container.name}`")
            time.sleep(POLL_INTERVAL)

    def _get(self, client: Any, instance: Instance, what: str, vanished: str) -> Any:
        import docker.errors

        try:
            return client.containers.get(instance.id)
        except docker.errors.NotFound:
            raise TargetNotFound(f"{what}: the container vanished {vanished} "
                                 "(it was removed); nothing was done to it") from None

    # --- health and the engine connection ----------------------------------------------

    def health(self) -> None:
        """Raise DriverUnavailable unless a Docker engine answers."""
        with self._client("checking the Docker engine") as client:
            client.ping()

    @contextmanager
    def _client(self, what: str) -> Iterator[Any]:
        """A docker-py client for one operation, closed after it; errors translated."""
        try:
            import docker
        except ImportError:
            raise DriverUnavailable(
                "the docker driver needs the Docker SDK for Python: "
                "pip install 'chaosrunner[docker]'") from None
        with translate_errors(what):
            _probe_unix_socket(self.context.api_timeout)
            client = docker.from_env(version=self._api_version or "auto",
                                     timeout=max(1, math.ceil(self.context.api_timeout)))
            try:
                # Remember the negotiated version: later clients skip the round trip.
                self._api_version = client.api.api_version
                yield client
            finally:
                client.close()


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn docker-py and transport errors into chaosrunner's error tree."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.NotFound as exc:
        raise TargetNotFound(f"{what}: {_explanation(exc)}") from None
    except docker.errors.APIError as exc:
        raise DriverError(f"{what}: the Docker engine refused: {_explanation(exc)}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            OSError) as exc:
        raise _unavailable(what, exc) from None


def _engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _probe_unix_socket(timeout: float) -> None:
    """Connect to the engine's unix socket once; OSError when that cannot be done.

    docker-py leaks the socket of a failed connect (a ResourceWarning at best), and its
    error text is vague; a connect of our own closes cleanly and says what went wrong.
    """
    host = _engine_host()
    if not host.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(host[len("unix://"):])


def _unavailable(what: str, exc: BaseException) -> DriverUnavailable:
    host = _engine_host()
    text = str(exc)
    if "Permission denied" in text or isinstance(exc, PermissionError):
        return DriverUnavailable(
            f"{what}: permission denied on the Docker engine socket ({host}); run as root "
            "or as a member of the docker group, or set DOCKER_HOST")
    if "timed out" in text.lower():
        return DriverUnavailable(f"{what}: the Docker engine at {host} did not answer in time "
                                 f"({text})")
    return DriverUnavailable(
        f"{what}: no Docker engine answers at {host} ({text}); start dockerd or set "
        "DOCKER_HOST")


def _explanation(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def _is_up(state: Mapping[str, Any] | None, status: str) -> bool:
    if state:
        return bool(state.get("Running")) and not state.get("Paused") \
            and not state.get("Restarting")
    return status == "running"


def _has_healthcheck(container: Any) -> bool:
    test = ((container.attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test")
    return bool(test) and test != ["NONE"]


def _instance(container: Any) -> Instance:
    labels: Mapping[str, str] = container.labels or {}
    attrs: dict[str, JSON] = {"image": (container.attrs.get("Config") or {}).get("Image")}
    for key, label in (("compose_service", COMPOSE_SERVICE_LABEL),
                       ("compose_project", COMPOSE_PROJECT_LABEL)):
        if label in labels:
            attrs[key] = labels[label]
    return Instance(driver="docker", id=container.id, name=container.name, attrs=attrs)


def _label(instance: Instance) -> str:
    return f"container {instance.name!r} ({instance.id[:12]})"


def _whole_seconds(value: JSON) -> int:
    # The engine takes whole seconds; round up so a grace period is never cut short.
    seconds = float(value) if isinstance(value, int | float) else DEFAULT_GRACE_PERIOD
    return max(0, math.ceil(seconds))


__all__: list[str] = ["DockerDriver", "normalise_signal", "parse_target", "translate_errors"]

"""Halt sources: where the big red button is, so that one halt reaches a whole fleet.

    (none)                    the state directory's HALT file (`chaosrunner halt`, or `touch`)
    k8s://NAMESPACE/NAME      a ConfigMap, read through the official Kubernetes client;
                              halted while its `data.halted` is set (not "false"/"0"/"no"),
                              the reason in `data.reason`
    http(s)://HOST/PATH       halted while a GET answers 200 with a non-empty body (the
                              reason); `halt` sets it with PUT, `halt --clear` with DELETE

The source is `--halt-source` or the environment's CHAOSRUNNER_HALT_SOURCE. A runner always
watches its own state directory too, so `chaosrunner halt --state-dir D` keeps working.

A halt stays set until `chaosrunner halt --clear`: a run started while halted is refused
(exit 3) before anything is injected, and a running one aborts and rolls back at its next
check (every sample interval for a remote source, 0.1 s for the file).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chaosrunner.drivers.base import DriverContext
from chaosrunner.engine.ledger import HALT_FILE, Ledger
from chaosrunner.errors import (
    ChaosRunnerError,
    DriverError,
    InvalidInput,
    StateError,
    TargetNotFound,
)

ENV = "CHAOSRUNNER_HALT_SOURCE"
API_TIMEOUT = 5.0
HALT_PREFIX = "halt:"  # a run's abort reason when a halt stopped it
HALTED_PREFIX = "halted:"  # a run's refusal reason when halted before its start
CLEAR_HINT = "`chaosrunner halt --clear` re-arms"
NOT_HALTED = frozenset({"", "false", "0", "no", "off"})


class HaltSourceError(StateError):
    """A halt source that cannot be read or written."""


class HaltSource(Protocol):
    """One place a halt can be set. `check` raises HaltSourceError when unreadable."""

    @property
    def description(self) -> str: ...

    @property
    def remote(self) -> bool: ...  # read over the network: checked once per interval

    def check(self) -> str | None: ...  # the reason when halted, else None

    def set(self, reason: str) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class StateDirHalt:
    """The HALT file in a state directory (written and read by the Ledger, which guards
    it against symlinks and foreign owners); a plain `touch` halts too."""

    state_dir: Path
    remote: bool = False

    @property
    def path(self) -> Path:
        return self.state_dir / HALT_FILE

    @property
    def description(self) -> str:
        return str(self.path)

    def check(self) -> str | None:
        return Ledger(self.state_dir).halt_reason()

    def set(self, reason: str) -> None:
        Ledger(self.state_dir).halt(reason)

    def clear(self) -> None:
        Ledger(self.state_dir).clear_halt()


@dataclass
class ConfigMapHalt:
    """`k8s://NAMESPACE/NAME`: a ConfigMap any number of runners read."""

    namespace: str
    name: str
    remote: bool = True
    _driver: Any = field(default=None, repr=False)

    @property
    def description(self) -> str:
        return f"k8s://{self.namespace}/{self.name}"

    def check(self) -> str | None:
        data = self._data()
        if data is None or str(data.get("halted", "")).strip().lower() in NOT_HALTED:
            return None
        return str(data.get("reason") or "halted through ConfigMap " + self.description)

    def set(self, reason: str) -> None:
        data = {"halted": "true", "reason": reason, "at": _now()}
        core = self._core()
        if self._data() is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "chaosrunner"}},
                    "data": data}
            self._do("create", core.create_namespaced_config_map, self.namespace, body)
        else:
            self._do("update", core.patch_namespaced_config_map, self.name, self.namespace,
                     {"data": data})

    def clear(self) -> None:
        if self._data() is None:
            return
        self._do("update", self._core().patch_namespaced_config_map, self.name,
                 self.namespace, {"data": {"halted": "false", "reason": None, "at": _now()}})

    def _data(self) -> dict[str, Any] | None:
        core = self._core()
        try:
            found = self._do("read", core.read_namespaced_config_map, self.name,
                             self.namespace, raw=True)
        except TargetNotFound:
            return None
        data = found.get("data") if isinstance(found, dict) else None
        return data if isinstance(data, dict) else {}

    def _core(self) -> Any:
        if self._driver is None:
            # Imported here: the kubernetes client loads only for a ConfigMap halt source.
            from chaosrunner.drivers.kubernetes import KubernetesDriver

            self._driver = KubernetesDriver(DriverContext(api_timeout=API_TIMEOUT, retries=1))
        try:
            return self._driver.apis()[0]
        except ChaosRunnerError as exc:
            raise HaltSourceError(f"halt source {self.description}: {exc}") from None

    def _do(self, verb: str, fn: Any, *args: Any, raw: bool = False) -> Any:
        what = f"{verb} ConfigMap {self.namespace}/{self.name}"
        try:
            return self._driver.read(what, fn, *args) if raw else \
                self._driver.call(what, fn, *args)
        except TargetNotFound:
            raise
        except DriverError as exc:
            raise HaltSourceError(f"halt source {self.description}: {exc}") from None


@dataclass(frozen=True)
class HttpHalt:
    """An HTTP URL: halted while it answers 200 with a non-empty body."""

    url: str
    remote: bool = True

    @property
    def description(self) -> str:
        return self.url

    def check(self) -> str | None:
        response = self._request("GET")
        body: str = response.text.strip()
        if response.status_code == 200 and body:
            return body[:200]
        if response.status_code >= 500:
            raise HaltSourceError(f"halt source {self.url} answered {response.status_code}")
        return None

    def set(self, reason: str) -> None:
        self._expect(self._request("PUT", reason), "set")

    def clear(self) -> None:
        response = self._request("DELETE")
        if response.status_code != 404:
            self._expect(response, "clear")

    def _request(self, method: str, body: str | None = None) -> Any:
        import httpx

        try:
            return httpx.request(method, self.url, content=body, timeout=API_TIMEOUT)
        except httpx.HTTPError as exc:
            raise HaltSourceError(f"halt source {self.url} cannot be reached: "
                                  f"{type(exc).__name__}: {exc}") from None

    def _expect(self, response: Any, verb: str) -> None:
        if not 200 <= response.status_code < 300:
            raise HaltSourceError(f"cannot {verb} the halt at {self.url}: it answered "
                                  f"{response.status_code} to {response.request.method}; the "
                                  "URL must accept PUT (set, body = reason) and DELETE (clear)")


def parse_source(spec: str, state_dir: Path) -> HaltSource:
    """A `--halt-source` value as a source; InvalidInput (exit 4) when malformed."""
    text = spec.strip()
    if text.startswith("k8s://"):
        namespace, sep, name = text[len("k8s://"):].partition("/")
        if not (namespace and sep and name) or "/" in name:
            raise InvalidInput(f"halt source {spec!r}: expected k8s://NAMESPACE/NAME")
        return ConfigMapHalt(namespace, name)
    if text.startswith(("http://", "https://")):
        return HttpHalt(text)
    if text.startswith("file://") or text.startswith(("/", ".")):
        return StateDirHalt(Path(text.removeprefix("file://")))
    hint = f"; for a directory, write it as ./{text}" if text and "://" not in text else ""
    raise InvalidInput(f"halt source {spec!r}: use k8s://NAMESPACE/NAME, an http(s):// URL, "
                       "or a directory path starting with /, ./ or file:// (default: the "
                       f"state directory){hint}")


def configured(spec: str | None) -> str | None:
    """`--halt-source`, else CHAOSRUNNER_HALT_SOURCE, else None (the state dir)."""
    return spec or os.environ.get(ENV) or None


@dataclass(frozen=True)
class HaltSources:
    """What a runner watches: its state dir, plus the fleet's source when one is set."""

    sources: Sequence[HaltSource]

    @classmethod
    def for_run(cls, state_dir: Path, spec: str | None) -> HaltSources:
        local = StateDirHalt(Path(state_dir))
        spec = configured(spec)
        fleet = parse_source(spec, Path(state_dir)) if spec else None
        same = fleet is None or fleet.description == local.description
        return cls([local] if same or fleet is None else [local, fleet])

    @property
    def remote(self) -> list[HaltSource]:
        return [s for s in self.sources if s.remote]

    @property
    def local(self) -> list[HaltSource]:
        return [s for s in self.sources if not s.remote]

    def check(self, which: Sequence[HaltSource] | None = None) -> str | None:
        """The first halt reason found, with its source; HaltSourceError if unreadable."""
        for source in self.sources if which is None else which:
            reason = source.check()
            if reason is not None:
                return f"{reason} ({source.description})"
        return None

    def check_quietly(self) -> str | None:
        with contextlib.suppress(HaltSourceError):
            return self.check()
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

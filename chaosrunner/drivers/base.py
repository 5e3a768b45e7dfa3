"""The fault-driver interface, the handle it returns, and the registry.

Every driver implements the same five operations (DESIGN.md 3):

    validate(action, target, params) -> params   normalise and check; raises ParamError
    resolve(action, target) -> [Instance]         what the target matches now
    inject(instance, action, params, key) -> Handle
    revert(handle)                                take the fault back
    health()                                      is the backend usable? raises DriverUnavailable

Two rules make rollback always possible:

* Before `inject` runs, the engine writes the *provisional* handle (`Handle.provisional`,
  with empty `data`) to the ledger. So `revert` must accept a provisional handle and must be
  idempotent: reverting a fault that was never (or already) injected is a no-op, not an error.
* Everything `revert` needs is in the handle (JSON only), so `chaosrunner recover` in a new
  process can take back what a killed runner left behind.

Drivers translate their backend's exceptions into `chaosrunner.errors` at this boundary.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from chaosrunner.errors import InvalidInput

JSON = Any


@dataclass(frozen=True)
class DriverContext:
    """What every driver may know about the run it serves."""

    run_id: str = "adhoc"
    allow_exec: bool = False
    base_dir: str = "."
    api_timeout: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class Instance:
    """One thing a fault can hit: a process, container, proxy, pod."""

    driver: str
    id: str
    name: str
    attrs: Mapping[str, JSON] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSON]:
        return {"driver": self.driver, "id": self.id, "name": self.name,
                "attrs": dict(self.attrs)}

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> Instance:
        return cls(driver=data["driver"], id=data["id"], name=data["name"],
                   attrs=dict(data.get("attrs") or {}))


@dataclass(frozen=True)
class Handle:
    """A fault injected into one instance: all that `revert` needs, as JSON."""

    action: str
    instance: Instance
    key: str
    params: Mapping[str, JSON] = field(default_factory=dict)
    data: Mapping[str, JSON] = field(default_factory=dict)

    @classmethod
    def provisional(cls, action: str, instance: Instance, params: Mapping[str, JSON],
                    key: str) -> Handle:
        """The handle written to the ledger before inject runs."""
        return cls(action=action, instance=instance, key=key, params=dict(params))

    @property
    def driver(self) -> str:
        return self.action.split(".", 1)[0]

    @property
    def verb(self) -> str:
        return self.action.split(".", 1)[1] if "." in self.action else self.action

    def with_data(self, **data: JSON) -> Handle:
        return Handle(self.action, self.instance, self.key, self.params,
                      {**self.data, **data})

    def to_json(self) -> dict[str, JSON]:
        return {"action": self.action, "instance": self.instance.to_json(), "key": self.key,
                "params": dict(self.params), "data": dict(self.data)}

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> Handle:
        return cls(action=data["action"], instance=Instance.from_json(data["instance"]),
                   key=data["key"], params=dict(data.get("params") or {}),
                   data=dict(data.get("data") or {}))


class ParamError(InvalidInput):
    """A bad target or parameter; `key_path` is relative to the fault (('with', 'latency'))."""

    def __init__(self, key_path: tuple[str | int, ...], message: str) -> None:
        self.key_path = key_path
        super().__init__(message)


@runtime_checkable
class Driver(Protocol):
    """One kind of fault backend. See the module docstring for the contract."""

    name: ClassVar[str]
    actions: ClassVar[frozenset[str]]

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]: ...

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]: ...

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle: ...

    def revert(self, handle: Handle) -> None: ...

    def health(self) -> None: ...


class BaseDriver:
    """Helpers shared by drivers; subclasses set `name` and `actions`."""

    name: ClassVar[str] = ""
    actions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, context: DriverContext | None = None) -> None:
        self.context = context or DriverContext()

    def check_action(self, action: str) -> str:
        """The verb of `driver.verb`, or ParamError naming the known ones."""
        verb = action.split(".", 1)[1] if "." in action else ""
        if verb not in self.actions:
            known = ", ".join(f"{self.name}.{a}" for a in sorted(self.actions))
            raise ParamError(("action",), f"unknown action {action!r}; known: {known}")
        return verb

    def revert_after(self, params: Mapping[str, JSON]) -> float | None:
        """Seconds after inject at which the driver wants the fault reverted (restart_after)."""
        value = params.get("restart_after")
        return float(value) if isinstance(value, int | float) else None

    def settle_seconds(self, handle: Handle) -> float | None:
        """How long after its call an injection's effect may still land (a stop that waits
        out a grace period inside the backend); None when the effect is complete when
        `inject` returns. For an injection the ledger does not show as confirmed, `recover`
        and the watchdog wait this out, plus a margin, before reverting and calling the
        fault done."""
        return None

    def health(self) -> None:
        return None


# The engine adds the fault's deadline (epoch seconds: planned end plus a margin) to the
# params it passes to `inject`, under this key; drivers whose backend can carry it
# (Kubernetes annotations, toxic expiry) let the backend enforce it without the runner.
DEADLINE_PARAM = "_deadline"


# --- registry ------------------------------------------------------------------------------

# Drivers are imported only when an experiment uses them, so `validate` of a file that
# does not need Docker or Kubernetes never imports their client libraries.
DRIVERS: dict[str, str] = {
    "process": "chaosrunner.drivers.process:ProcessDriver",
    "toxiproxy": "chaosrunner.drivers.toxiproxy:ToxiproxyDriver",
    "docker": "chaosrunner.drivers.docker:DockerDriver",
    "kubernetes": "chaosrunner.drivers.kubernetes:KubernetesDriver",
    "python": "chaosrunner.drivers.python:PythonDriver",
    "load": "chaosrunner.drivers.load:LoadDriver",
    "fake": "chaosrunner.testing.fakes:FakeDriver",
}

_overrides: dict[str, Driver] = {}


def register_instance(driver: Driver) -> None:
    """Make `get_driver(driver.name)` return this object (tests, embedding)."""
    _overrides[driver.name] = driver


def unregister_instance(name: str) -> None:
    _overrides.pop(name, None)


def driver_class(name: str) -> type[Any]:
    if name not in DRIVERS:
        known = ", ".join(sorted(n for n in DRIVERS if n != "fake"))
        raise InvalidInput(f"unknown driver {name!r}; known drivers: {known}")
    module_name, _, attr = DRIVERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"driver {name!r} needs a package that is not installed "
                           f"({exc.name}); install chaosrunner[{name}]") from None
    cls: type[Any] = getattr(module, attr)
    return cls


def get_driver(name: str, context: DriverContext | None = None) -> Driver:
    """A ready driver by name ('process', 'docker', ...)."""
    if name in _overrides:
        return _overrides[name]
    driver: Driver = driver_class(name)(context)
    return driver

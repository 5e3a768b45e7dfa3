"""The fault-driver interface, the handle it returns, and the registry.

Every driver implements the same five operations (DESIGN.md 3):

    validate(action, target, params) -> params   normalise and check; raises ParamError
    resolve(action, target) -> [Instance]         what the target matches now
    inject(instance, action, params, key) -> Handle
    revert(handle)                                take the fault back
    health()                                      is the backend usable? raises DriverUnavailable

and declares its capabilities, which the plan asks before anything is injected
(`BaseDriver` gives each a default that suits most drivers):

    needs_exec(action, params) -> bool            runs a program named in the file (--allow-exec)
    composes(first, second) -> bool               two faults may overlap on one instance
    check_namespaces(target, allowed)             refuse a target outside blast_radius.namespaces
    revert_after(params) -> seconds | None        the driver's own timed revert (restart_after)
    settle_seconds(handle) -> seconds | None      how long an unconfirmed inject may still land
    accepts_deadline                              inject gets the fault's deadline (DEADLINE_PARAM)
    revert_first                                  rollback takes these faults back first (load)

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
from collections.abc import Iterable, Mapping
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
    accepts_deadline: ClassVar[bool]  # inject reads params[DEADLINE_PARAM]
    revert_first: ClassVar[bool]  # rollback takes this driver's faults back before others

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]: ...

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]: ...

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle: ...

    def revert(self, handle: Handle) -> None: ...

    def health(self) -> None: ...

    def needs_exec(self, action: str, params: Mapping[str, JSON]) -> bool:
        """Whether this fault runs a program named in the experiment file."""
        ...

    def composes(self, first: str, second: str) -> bool:
        """Whether faults `first` and `second` (actions) may overlap on one instance: the
        revert of one must not undo the other."""
        ...

    def check_namespaces(self, target: Mapping[str, JSON], allowed: tuple[str, ...]) -> None:
        """Raise BlastRadiusExceeded when `target` lies outside the allowed namespaces."""
        ...

    def revert_after(self, params: Mapping[str, JSON]) -> float | None:
        """Seconds after inject at which the driver wants the fault reverted."""
        ...

    def settle_seconds(self, handle: Handle) -> float | None:
        """How long after its call an unconfirmed injection may still take effect."""
        ...


class BaseDriver:
    """Helpers shared by drivers; subclasses set `name` and `actions`."""

    name: ClassVar[str] = ""
    actions: ClassVar[frozenset[str]] = frozenset()
    accepts_deadline: ClassVar[bool] = False
    revert_first: ClassVar[bool] = False

    def __init__(self, context: DriverContext | None = None) -> None:
        self.context = context or DriverContext()

    def check_action(self, action: str) -> str:
        """The verb of `driver.verb`, or ParamError naming the known ones."""
        verb = action.split(".", 1)[1] if "." in action else ""
        if verb not in self.actions:
            # Imported here: only an unknown action needs the suggestion machinery.
            from chaosrunner.spec.messages import did_you_mean

            known = [f"{self.name}.{a}" for a in sorted(self.actions)]
            raise ParamError(("action",), f"unknown action {action!r}"
                             f"{did_you_mean(action, known)}; known: {', '.join(known)}")
        return verb

    def revert_after(self, params: Mapping[str, JSON]) -> float | None:
        """Seconds after inject at which the driver wants the fault reverted (restart_after)."""
        value = params.get("restart_after")
        return float(value) if isinstance(value, int | float) else None

    def needs_exec(self, action: str, params: Mapping[str, JSON]) -> bool:
        """By default a driver runs nothing the file names."""
        return False

    def composes(self, first: str, second: str) -> bool:
        """By default nothing composes: two faults on one instance are refused."""
        return False

    def check_namespaces(self, target: Mapping[str, JSON], allowed: tuple[str, ...]) -> None:
        """By default a driver has no namespaces to check."""
        return None

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
    "load": "chaosrunner.load.driver:LoadDriver",
}


def driver_class(name: str) -> type[Any]:
    """The class of a production driver; InvalidInput naming the known ones."""
    if name not in DRIVERS:
        raise InvalidInput(f"unknown driver {name!r}; known drivers: {', '.join(DRIVERS)}")
    module_name, _, attr = DRIVERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"driver {name!r} needs a package that is not installed "
                           f"({exc.name}); install chaosrunner[{name}]") from None
    cls: type[Any] = getattr(module, attr)
    return cls


def get_driver(name: str, context: DriverContext | None = None) -> Driver:
    """A ready production driver by name ('process', 'docker', ...)."""
    driver: Driver = driver_class(name)(context)
    return driver


class DriverRegistry:
    """Which driver serves an action's driver name: the production drivers, and any
    ready `instances` handed in. A run, the plan, validation and `recover` all ask one
    of these, so tests hand their fakes to a run through its constructor (like the
    clock) instead of patching a module global:

        registry = DriverRegistry([FakeDriver(world)])
        registry.get("fake") is registry.get("fake")   # the one instance
    """

    def __init__(self, instances: Iterable[Driver] = ()) -> None:
        self.instances: dict[str, Driver] = {driver.name: driver for driver in instances}

    def names(self) -> list[str]:
        """The driver names an action may start with."""
        return [*DRIVERS, *(n for n in self.instances if n not in DRIVERS)]

    def get(self, name: str, context: DriverContext | None = None) -> Driver:
        """A ready driver; InvalidInput for an unknown name or a missing extra."""
        if name in self.instances:
            return self.instances[name]
        return get_driver(name, context)

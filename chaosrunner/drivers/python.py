"""`python`: call a Python function, typically a Chaos Toolkit extension activity.

    - name: scale-down
      action: python
      with:
        call: chaosk8s.deployment.actions.scale_deployment
        args: {name: web, replicas: 1, ns: shop}
        revert: {call: chaosk8s.deployment.actions.scale_deployment,
                 args: {name: web, replicas: 3, ns: shop}}
        configuration: {k8s_ns: shop}
        secrets: {KUBERNETES_CONTEXT: {type: env, key: KUBE_CONTEXT}}
        timeout: 30s

As the Chaos Toolkit does, a function with a `configuration` parameter receives the
configuration and one with a `secrets` parameter the secrets; `${name}` in string
arguments is replaced by the configuration or secret of that name. Values written as
`{type: env, key: NAME}` are read from the environment when the call is made, so they are
never stored in the ledger or reports.

Runs code named by the experiment file, so `needs_exec` is always true: the engine
refuses it without `--allow-exec`. The call runs with a timeout (`timeout`, default 60s);
a call that outlives it is abandoned (a Python thread cannot be killed) and the fault
fails, which aborts the run with rollback. `revert` runs even for a provisional handle
(we cannot know how far an interrupted call got), so revert functions should be
idempotent; a fault without `revert` has nothing to take back.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from chaosrunner.drivers.base import JSON, BaseDriver, Handle, Instance, ParamError
from chaosrunner.errors import ChaosRunnerError, DriverError, ExecNotAllowed, InvalidInput
from chaosrunner.secrets import remember
from chaosrunner.spec.units import parse_duration

CALL = re.compile(r"^[A-Za-z_][\w.]*[.:][A-Za-z_]\w*$")
DEFAULT_TIMEOUT = 60.0
PARAMS = frozenset({"call", "args", "revert", "configuration", "secrets", "timeout"})


def resolve_values(value: Any) -> Any:
    """Replace every `{type: env, key: NAME[, default: D]}` by the environment's value."""
    if isinstance(value, Mapping):
        if value.get("type") == "env" and "key" in value:
            key = str(value["key"])
            if key in os.environ:
                return os.environ[key]
            if "default" in value:
                return value["default"]
            raise InvalidInput(f"environment variable {key} is not set (needed by the "
                               "experiment's configuration or secrets)")
        return {k: resolve_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_values(v) for v in value]
    return value


def substitute(value: Any, *mappings: Mapping[str, Any]) -> Any:
    """`${name}` in strings -> the first mapping's value of `name` (typed when alone)."""
    if isinstance(value, str):
        names: dict[str, Any] = {}
        for mapping in reversed(mappings):
            names.update({k: v for k, v in mapping.items() if not isinstance(v, Mapping)})
        whole = re.fullmatch(r"\$\{([^}]+)\}", value)
        if whole and whole[1] in names:
            return names[whole[1]]
        return re.sub(r"\$\{([^}]+)\}",
                      lambda m: str(names[m[1]]) if m[1] in names else m[0], value)
    if isinstance(value, Mapping):
        return {k: substitute(v, *mappings) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, *mappings) for v in value]
    return value


def load_callable(call: str) -> Callable[..., Any]:
    """`package.module.function` (or `package.module:function`) -> the function."""
    module_name, _, attr = call.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverError(f"cannot import {module_name!r} for call {call!r}: {exc}; install the "
                          "package that provides it") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise DriverError(f"{module_name} has no function {attr!r} (call {call!r})")
    return function  # type: ignore[no-any-return]


def call_function(call: str, args: Mapping[str, Any], configuration: Mapping[str, Any],
                  secrets: Mapping[str, Any], timeout: float | None) -> Any:
    """Call `call(**args)` the Chaos Toolkit way, within `timeout` seconds."""
    function = load_callable(call)
    kwargs = dict(substitute(dict(args), configuration, _flat(secrets)))
    accepted = inspect.signature(function).parameters
    if "configuration" in accepted and "configuration" not in kwargs:
        kwargs["configuration"] = dict(configuration)
    if "secrets" in accepted and "secrets" not in kwargs:
        kwargs["secrets"] = dict(secrets)
    return run_with_timeout(call, lambda: function(**kwargs), timeout)


def _flat(secrets: Mapping[str, Any]) -> dict[str, Any]:
    # Chaos Toolkit secrets are grouped in scopes; `${name}` looks through all of them.
    flat: dict[str, Any] = {}
    for key, value in secrets.items():
        if isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def run_with_timeout(what: str, fn: Callable[[], Any], timeout: float | None) -> Any:
    """`fn()` in a worker thread; DriverError when it raises or outlives `timeout`."""
    if timeout is None:
        return _translate(what, fn)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"python-call {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise DriverError(f"{what} did not finish within {timeout:g}s (activity timeout); "
                          "abandoned")
    if "error" in box:
        return _translate(what, _raise(box["error"]))
    return box.get("result")


def _raise(error: BaseException) -> Callable[[], Any]:
    def again() -> Any:
        raise error
    return again


def _translate(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ChaosRunnerError:
        raise
    except Exception as exc:
        raise DriverError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


class PythonDriver(BaseDriver):
    name: ClassVar[str] = "python"
    actions: ClassVar[frozenset[str]] = frozenset({"call"})

    def composes(self, first: str, second: str) -> bool:
        """Calls have no shared target: each one's revert is its own `revert` call."""
        return True

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        if action not in ("python", "python.call"):
            raise ParamError(("action",), f"unknown action {action!r}; the python driver's "
                             "action is `python`")
        if target:
            raise ParamError(("target",), "python actions take no target; put everything in "
                             "`with`")
        for key in params:
            if key not in PARAMS:
                raise ParamError(("with", key), "unknown parameter for python; allowed: "
                                 f"{', '.join(sorted(PARAMS))}")
        result: dict[str, JSON] = {"call": self._call_name(params.get("call"), ("with", "call")),
                                   "args": self._args(params.get("args"), ("with", "args"))}
        if "revert" in params:
            result["revert"] = self._revert(params["revert"])
        for key in ("configuration", "secrets"):
            value = params.get(key, {})
            if not isinstance(value, Mapping):
                raise ParamError(("with", key), f"{key} is a mapping")
            result[key] = dict(value)
        try:
            result["timeout"] = parse_duration(params["timeout"]) if "timeout" in params \
                else DEFAULT_TIMEOUT
        except ValueError as exc:
            raise ParamError(("with", "timeout"), str(exc)) from None
        return result

    @staticmethod
    def _call_name(value: JSON, key: tuple[str | int, ...]) -> str:
        if not isinstance(value, str) or not CALL.match(value):
            raise ParamError(key, "call is `package.module.function`, e.g. "
                             "chaosk8s.pod.actions.terminate_pods")
        return value

    @staticmethod
    def _args(value: JSON, key: tuple[str | int, ...]) -> dict[str, JSON]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ParamError(key, "args is a mapping of keyword arguments")
        return dict(value)

    def _revert(self, value: JSON) -> dict[str, JSON]:
        if not isinstance(value, Mapping) or set(value) - {"call", "args"}:
            raise ParamError(("with", "revert"), "revert is {call: module.function, args: {...}}")
        return {"call": self._call_name(value.get("call"), ("with", "revert", "call")),
                "args": self._args(value.get("args"), ("with", "revert", "args"))}

    def needs_exec(self, action: str, params: Mapping[str, JSON]) -> bool:
        return True

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        # No target: the call itself is the one "instance" (so the blast radius counts it).
        return [Instance("python", "call", "python call")]

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        if not self.context.allow_exec:
            raise ExecNotAllowed(f"python call {params['call']} needs --allow-exec")
        result = self._run(str(params["call"]), params.get("args") or {}, params)
        handle = Handle(action, Instance("python", key, str(params["call"])), key, dict(params))
        return handle.with_data(called=True, result=_jsonable(result))

    def revert(self, handle: Handle) -> None:
        revert = handle.params.get("revert")
        if not revert:
            return
        self._run(str(revert["call"]), revert.get("args") or {}, handle.params)

    def _run(self, call: str, args: Mapping[str, Any], params: Mapping[str, JSON]) -> Any:
        # Reverts run without --allow-exec (e.g. in `recover`): the inject was allowed.
        configuration = resolve_values(params.get("configuration") or {})
        secrets = resolve_values(params.get("secrets") or {})
        remember(secrets)  # never printed or stored (chaosrunner.secrets)
        timeout = params.get("timeout", DEFAULT_TIMEOUT)
        return call_function(call, args, configuration, secrets,
                             float(timeout) if timeout is not None else None)


def _jsonable(value: Any) -> JSON:
    """The call's result for the report, if it is small JSON; else its repr, cut short."""
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)[:200]
    return value if len(text) <= 2000 else text[:200] + "..."

"""Running Chaos Toolkit activities: python, process and http providers, with timeouts.

Providers are looked up in the `PROVIDERS` registry by their `type`. What each returns is
what the Chaos Toolkit returns, so tolerances written for it hold here:

* python: the function's return value;
* process: `{"status": exit code, "stdout": str, "stderr": str}`;
* http: `{"status": code, "headers": {...}, "body": JSON or text}`.

An *action* fails (DriverError) when its function raises, its process exits non-zero or
its HTTP answer is 400 or above (or not `expected_status`); a *probe* only fails when it
cannot run at all, its value is then judged by the tolerance.

Every activity runs within a timeout: the provider's own `timeout` (process: the program is
killed; http: the request is cut) or the caller's.

`run_action` and `run_rollbacks` are what converted experiments call through the `python`
driver (see chaosrunner.ctk.convert).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chaosrunner.ctk.model import Activity, HttpProvider, ProcessProvider, PythonProvider
from chaosrunner.drivers.python import call_function, resolve_values, run_with_timeout, substitute
from chaosrunner.errors import DriverError, InvalidInput
from chaosrunner.secrets import remember
from chaosrunner.spec.loader import KeyPath, format_key_path
from chaosrunner.spec.messages import describe

__all__ = ["PROVIDERS", "run_action", "run_activity", "run_rollbacks", "substitute"]

DEFAULT_TIMEOUT = 60.0
Runner = Callable[[Any, Mapping[str, Any], Mapping[str, Any], bool, float], Any]
PROVIDERS: dict[str, Runner] = {}
_ACTIVITY = TypeAdapter(Activity)


def provider(kind: str) -> Callable[[Runner], Runner]:
    """Register the runner of `provider: {type: kind}`."""
    def register(runner: Runner) -> Runner:
        PROVIDERS[kind] = runner
        return runner
    return register


def parse_activity(raw: Mapping[str, Any]) -> Activity:
    try:
        return _ACTIVITY.validate_python(dict(raw))
    except ValidationError:
        name = raw.get("name", "?") if isinstance(raw, Mapping) else "?"
        problems = activity_problems(raw, lambda path: f"Chaos Toolkit activity {name!r}: "
                                     f"{format_key_path(path) or '(top level)'}")
        raise InvalidInput("; ".join(problems)) from None


def activity_problems(raw: Any, where: Callable[[KeyPath], str]) -> list[str]:
    """What is wrong with one Chaos Toolkit activity, in the user's words (empty: nothing)."""
    try:
        _ACTIVITY.validate_python(dict(raw) if isinstance(raw, Mapping) else raw)
    except ValidationError as exc:
        return describe(exc.errors(), Activity, where)
    return []


def run_activity(raw: Mapping[str, Any], configuration: Mapping[str, Any] | None = None,
                 secrets: Mapping[str, Any] | None = None,
                 timeout: float | None = None) -> Any:
    """Run one activity (probe or action) and return its value."""
    activity = parse_activity(raw)
    configuration = resolve_values(dict(configuration or {}))
    secrets = resolve_values(dict(secrets or {}))
    remember(secrets)  # never printed or stored (chaosrunner.secrets)
    runner = PROVIDERS[activity.provider.type]
    return runner(activity.provider, configuration, secrets, activity.type == "action",
                  timeout or DEFAULT_TIMEOUT)


def run_action(activity: Mapping[str, Any], configuration: Mapping[str, Any] | None = None,
               secrets: Mapping[str, Any] | None = None) -> Any:
    """One method activity of a converted experiment (called by the python driver)."""
    return run_activity(activity, configuration, secrets)


def run_rollbacks(activities: Sequence[Mapping[str, Any]],
                  configuration: Mapping[str, Any] | None = None,
                  secrets: Mapping[str, Any] | None = None) -> None:
    """Every rollback, in order; all are tried, then the first failure is raised."""
    failures: list[str] = []
    for activity in activities:
        try:
            run_activity(activity, configuration, secrets)
        except (DriverError, InvalidInput) as exc:
            failures.append(f"{activity.get('name', '?')}: {exc}")
    if failures:
        raise DriverError("rollback activities failed: " + "; ".join(failures))


def nothing() -> None:
    """The inject of the rollbacks fault: the rollbacks are its revert."""


def _scoped(secrets: Mapping[str, Any], scopes: Sequence[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for scope in scopes:
        value = secrets.get(scope)
        if isinstance(value, Mapping):
            merged.update(value)
    return merged


@provider("python")
def _python(spec: PythonProvider, configuration: Mapping[str, Any],
            secrets: Mapping[str, Any], is_action: bool, timeout: float) -> Any:
    return call_function(f"{spec.module}.{spec.func}", spec.arguments, configuration,
                         _scoped(secrets, spec.secrets), timeout)


@provider("process")
def _process(spec: ProcessProvider, configuration: Mapping[str, Any],
             secrets: Mapping[str, Any], is_action: bool, timeout: float) -> Any:
    path = shutil.which(spec.path) or spec.path
    raw_args = substitute(spec.arguments if isinstance(spec.arguments, str)
                          else list(spec.arguments), configuration, secrets)
    args = shlex.split(raw_args) if isinstance(raw_args, str) else [str(a) for a in raw_args]
    limit = spec.timeout or timeout
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=limit,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise DriverError(f"process {spec.path} did not finish within {limit:g}s (activity "
                          "timeout); it was killed") from None
    except OSError as exc:
        raise DriverError(f"process {spec.path} cannot start: {exc.strerror}") from None
    if is_action and done.returncode != 0:
        raise DriverError(f"process {spec.path} exited {done.returncode}: "
                          f"{done.stderr.strip()[-300:]}")
    return {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


@provider("http")
def _http(spec: HttpProvider, configuration: Mapping[str, Any],
          secrets: Mapping[str, Any], is_action: bool, timeout: float) -> Any:
    import httpx

    url = str(substitute(spec.url, configuration, secrets))
    arguments = substitute(spec.arguments, configuration, secrets)
    limit = spec.timeout or timeout
    request: dict[str, Any] = {"headers": substitute(dict(spec.headers), configuration,
                                                     secrets)}
    if isinstance(arguments, Mapping):
        key = "params" if spec.method.upper() in ("GET", "HEAD", "DELETE") else "json"
        request[key] = dict(arguments)
    elif arguments is not None:
        request["content"] = str(arguments)

    def call() -> Any:
        with httpx.Client(timeout=limit if isinstance(limit, int | float) else
                          httpx.Timeout(limit[1], connect=limit[0]),
                          verify=spec.verify_tls) as client:
            return client.request(spec.method.upper(), url, **request)

    try:
        response = run_with_timeout(f"http {spec.method} {url}", call, None)
    except DriverError as exc:
        raise DriverError(f"http {spec.method} {url}: {exc.__cause__ or exc}") from None
    result = {"status": response.status_code, "headers": dict(response.headers),
              "body": _body(response)}
    expected = spec.expected_status
    if is_action and (response.status_code != expected if expected is not None
                      else response.status_code >= 400):
        raise DriverError(f"http {spec.method} {url} answered {response.status_code}")
    return result


def _body(response: Any) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text

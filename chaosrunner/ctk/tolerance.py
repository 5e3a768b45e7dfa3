"""Probe tolerances, as the Chaos Toolkit judges them.

`within_tolerance(tolerance, value)` is dispatched on the tolerance's type with
`functools.singledispatch`, and a mapping tolerance on its `type:` key through the
`KINDS` registry; no if/elif chain to extend.

    >>> within_tolerance(200, {"status": 200, "body": "ok"})
    True
    >>> within_tolerance({"type": "range", "range": [0, 5], "target": "status"}, {"status": 7})
    False
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import singledispatch
from typing import Any

from chaosrunner.errors import ChaosRunnerError, InvalidInput

Checker = Callable[[Mapping[str, Any], Any, "ToleranceContext"], bool]


class ToleranceContext:
    """What a `probe` tolerance needs to run its own probe: configuration and secrets."""

    def __init__(self, configuration: Mapping[str, Any] | None = None,
                 secrets: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
        self.configuration = dict(configuration or {})
        self.secrets = dict(secrets or {})
        self.timeout = timeout


@singledispatch
def within_tolerance(tolerance: Any, value: Any,
                     context: ToleranceContext | None = None) -> bool:
    """Does the probe's `value` meet `tolerance`? (See the module docstring.)"""
    raise InvalidInput(f"unsupported tolerance {tolerance!r}: use a value, a list, or "
                       "{type: range|regex|jsonpath|probe, ...}")


def _status_or_value(value: Any) -> Any:
    # http and process probes return {"status": ...}; a scalar tolerance compares the status.
    return value["status"] if isinstance(value, Mapping) and "status" in value else value


@within_tolerance.register(bool)
def _(tolerance: bool, value: Any, context: ToleranceContext | None = None) -> bool:
    return bool(value == tolerance)


@within_tolerance.register(int)
@within_tolerance.register(float)
def _(tolerance: float, value: Any, context: ToleranceContext | None = None) -> bool:
    return bool(_status_or_value(value) == tolerance)


@within_tolerance.register(str)
def _(tolerance: str, value: Any, context: ToleranceContext | None = None) -> bool:
    return bool(value == tolerance)


@within_tolerance.register(list)
@within_tolerance.register(tuple)
def _(tolerance: list[Any], value: Any, context: ToleranceContext | None = None) -> bool:
    value = _status_or_value(value)
    if len(tolerance) == 2 and all(isinstance(v, int | float) for v in tolerance) \
            and isinstance(value, int | float):
        return bool(tolerance[0] <= value <= tolerance[1])
    return value in tolerance


KINDS: dict[str, Checker] = {}


def tolerance_kind(name: str) -> Callable[[Checker], Checker]:
    """Register the checker of `{type: name, ...}` tolerances."""
    def register(checker: Checker) -> Checker:
        KINDS[name] = checker
        return checker
    return register


@within_tolerance.register(dict)
def _(tolerance: dict[str, Any], value: Any, context: ToleranceContext | None = None) -> bool:
    kind = tolerance.get("type")
    checker = KINDS.get(str(kind))
    if checker is None:
        raise InvalidInput(f"unknown tolerance type {kind!r}; known: {', '.join(sorted(KINDS))}")
    return checker(tolerance, value, context or ToleranceContext())


def _target(tolerance: Mapping[str, Any], value: Any) -> Any:
    target = tolerance.get("target")
    if target and isinstance(value, Mapping):
        return value.get(target, value)
    return value


@tolerance_kind("range")
def _range(tolerance: Mapping[str, Any], value: Any, context: ToleranceContext) -> bool:
    low, high = tolerance["range"]
    try:
        number = Decimal(str(_target(tolerance, value)))
    except InvalidOperation:
        return False
    return Decimal(str(low)) <= number <= Decimal(str(high))


@tolerance_kind("regex")
def _regex(tolerance: Mapping[str, Any], value: Any, context: ToleranceContext) -> bool:
    # Imported here: activities import this module (probe tolerances).
    from chaosrunner.ctk.activities import substitute

    pattern = substitute(str(tolerance["pattern"]), context.configuration, context.secrets)
    subject = _target(tolerance, value)
    if isinstance(subject, bytes):
        subject = subject.decode("utf-8", "replace")
    return re.search(str(pattern), str(subject)) is not None


@tolerance_kind("jsonpath")
def _jsonpath(tolerance: Mapping[str, Any], value: Any, context: ToleranceContext) -> bool:
    # Imported here: activities import this module (probe tolerances).
    from chaosrunner.ctk.activities import substitute

    try:
        from jsonpath_ng.ext import parse  # type: ignore[attr-defined]
    except ImportError:
        raise InvalidInput("jsonpath tolerances need the jsonpath-ng package: "
                           "pip install 'chaosrunner[chaostoolkit]'") from None
    subject = _target(tolerance, value)
    if isinstance(subject, bytes):
        subject = subject.decode("utf-8", "replace")
    if isinstance(subject, str):
        with contextlib.suppress(ValueError):
            subject = json.loads(subject)
    path = str(substitute(str(tolerance["path"]), context.configuration, context.secrets))
    found = [match.value for match in parse(path).find(subject)]
    if "expect" in tolerance:
        expect = substitute(tolerance["expect"], context.configuration, context.secrets)
        return found == (expect if isinstance(expect, list) else [expect])
    if tolerance.get("count") is not None:
        return len(found) == int(tolerance["count"])
    return len(found) > 0


@tolerance_kind("probe")
def _probe(tolerance: Mapping[str, Any], value: Any, context: ToleranceContext) -> bool:
    # Imported here: activities import this module (probe tolerances).
    from chaosrunner.ctk.activities import run_activity

    provider = dict(tolerance["provider"])
    provider["arguments"] = {**dict(provider.get("arguments") or {}), "value": value}
    try:
        return bool(run_activity({**tolerance, "provider": provider}, context.configuration,
                                 context.secrets, context.timeout))
    except ChaosRunnerError:
        return False

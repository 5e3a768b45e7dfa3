"""The driver contract suite: every driver runs the same tests.

Subclass `DriverContract` in a test module (name the subclass `Test...`) and implement
`case()` returning a `ContractCase`: a driver, one action with target and params, and a
`faulted(instance)` probe that tells whether the fault is in effect on the real system.

    class TestProcessDriver(DriverContract):
        @pytest.fixture
        def case(self, tmp_path): ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from chaosrunner.drivers.base import Driver, Handle, Instance, ParamError


@dataclass
class ContractCase:
    driver: Driver
    action: str
    target: Mapping[str, Any]
    params: Mapping[str, Any]
    faulted: Callable[[Instance], bool]
    settle: Callable[[Callable[[], bool]], bool] = lambda check: check()


class DriverContract:
    """Behaviour every driver owes the engine (see chaosrunner.drivers.base)."""

    def test_validate_returns_json_params(self, case: ContractCase) -> None:
        params = case.driver.validate(case.action, case.target, case.params)
        assert json.loads(json.dumps(params)) == params

    def test_unknown_action_is_a_param_error(self, case: ContractCase) -> None:
        prefix = case.action.split(".", 1)[0]
        with pytest.raises(ParamError):
            case.driver.validate(f"{prefix}.no_such_action", case.target, case.params)

    def test_resolve_finds_unfaulted_instances(self, case: ContractCase) -> None:
        instances = case.driver.resolve(case.action, case.target)
        assert instances
        assert not any(case.faulted(i) for i in instances)

    def test_inject_then_revert_from_json(self, case: ContractCase) -> None:
        params = case.driver.validate(case.action, case.target, case.params)
        instance = case.driver.resolve(case.action, case.target)[0]
        handle = case.driver.inject(instance, case.action, params, "contract.k1")
        try:
            assert case.settle(lambda: case.faulted(instance))
        finally:
            case.driver.revert(Handle.from_json(json.loads(json.dumps(handle.to_json()))))
        assert case.settle(lambda: not case.faulted(instance))

    def test_revert_is_idempotent(self, case: ContractCase) -> None:
        params = case.driver.validate(case.action, case.target, case.params)
        instance = case.driver.resolve(case.action, case.target)[0]
        handle = case.driver.inject(instance, case.action, params, "contract.k2")
        case.driver.revert(handle)
        case.driver.revert(handle)
        assert case.settle(lambda: not case.faulted(instance))

    def test_provisional_handle_reverts_safely(self, case: ContractCase) -> None:
        params = case.driver.validate(case.action, case.target, case.params)
        instance = case.driver.resolve(case.action, case.target)[0]
        provisional = Handle.provisional(case.action, instance, params, "contract.k3")
        case.driver.revert(provisional)  # never injected: a no-op, not an error
        assert not case.faulted(instance)
        case.driver.inject(instance, case.action, params, "contract.k3")
        case.driver.revert(provisional)  # the ledger's intent record alone takes it back
        assert case.settle(lambda: not case.faulted(instance))

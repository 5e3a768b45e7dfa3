"""engine/faults.py: the one revert-with-retries policy, shared by a run's rollback and
by `chaosrunner recover`."""

from __future__ import annotations

import asyncio

from chaosrunner.cli import recover
from chaosrunner.drivers.base import DriverRegistry, Handle, Instance
from chaosrunner.engine.faults import RevertPolicy, revert_with_retries
from chaosrunner.engine.ledger import OpenFault
from chaosrunner.errors import DriverError
from chaosrunner.testing.fakes import FakeDriver, World


def flaky(failures: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def revert() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise DriverError(f"backend busy ({len(calls)})")

    return calls, revert


def test_a_revert_is_retried_until_it_works() -> None:
    calls, revert = flaky(2)
    seen: list[tuple[int, str]] = []
    error = asyncio.run(revert_with_retries(revert, RevertPolicy(attempts=3, timeout=5),  # type: ignore[arg-type]
                                            lambda n, e: seen.append((n, e))))
    assert error is None and len(calls) == 3
    assert seen == [(1, "backend busy (1)"), (2, "backend busy (2)")]


def test_the_last_error_is_returned_after_the_last_attempt() -> None:
    calls, revert = flaky(10)
    error = asyncio.run(revert_with_retries(revert, RevertPolicy(attempts=2, timeout=5)))  # type: ignore[arg-type]
    assert error == "backend busy (2)" and len(calls) == 2


def test_a_driver_bug_is_a_failure_with_its_type() -> None:
    def revert() -> None:
        raise KeyError("handle")

    error = asyncio.run(revert_with_retries(revert, RevertPolicy(attempts=1, timeout=5)))
    assert error == "KeyError: 'handle'"


def test_recover_uses_the_same_policy() -> None:
    world = World(["api-1"])
    world.fail_revert = 2  # the first two reverts fail; the third, as in a rollback, works
    handle = Handle.provisional("fake.down", Instance("fake", "api-1", "api-1"), {}, "r.f.0")
    item = OpenFault(run_id="r", fault="f", handle=handle, confirmed=True)
    assert recover.revert_with_retries(item, DriverRegistry([FakeDriver(world)])) is None
    assert world.log == [("revert", "r.f.0")]

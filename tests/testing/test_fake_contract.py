"""The fakes obey the same driver contract as the real drivers."""

from __future__ import annotations

import pytest

from chaosrunner.testing.contract import ContractCase, DriverContract
from chaosrunner.testing.fakes import FakeDriver, World


class TestFakeDriverContract(DriverContract):
    @pytest.fixture
    def case(self) -> ContractCase:
        world = World(["api-1", "api-2"])
        return ContractCase(driver=FakeDriver(world), action="fake.down",
                            target={"prefix": "api"}, params={},
                            faulted=lambda i: i.name in world.down)

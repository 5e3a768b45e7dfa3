"""The driver interface says everything the plan asks, and the registry holds only the
production drivers: fakes reach a run through its constructor, not a module global."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from chaosrunner.cli.main import main
from chaosrunner.drivers.base import DRIVERS, BaseDriver, Driver, DriverRegistry, driver_class
from chaosrunner.testing.fakes import FakeDriver, World

REPO = Path(__file__).resolve().parents[2]
CAPABILITIES = ("needs_exec", "composes", "check_namespaces", "revert_after",
                "settle_seconds")
FLAGS = ("accepts_deadline", "revert_first")


def test_the_protocol_declares_every_capability_with_a_default_on_the_base() -> None:
    for name in CAPABILITIES:
        assert name in Driver.__dict__, name
        assert callable(getattr(BaseDriver, name)), name
    for name in FLAGS:
        assert name in Driver.__annotations__, name
        assert getattr(BaseDriver, name) is False, name


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_every_production_driver_implements_the_whole_protocol(name: str) -> None:
    driver = driver_class(name)(None)
    assert isinstance(driver, Driver)
    assert driver.name == name


def test_no_capability_is_discovered_with_getattr() -> None:
    # Any getattr/hasattr that names a capability, anywhere in the package, would let a
    # misspelt capability pass silently; the protocol and mypy check direct calls instead.
    names = "|".join(CAPABILITIES + FLAGS)
    discovery = re.compile(rf"(getattr|hasattr)\([^)]*['\"]({names})['\"]")
    for module in (REPO / "chaosrunner").rglob("*.py"):
        assert not discovery.search(module.read_text()), module.relative_to(REPO)


def test_fake_is_not_a_production_driver(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert "fake" not in DRIVERS
    (tmp_path / "steady.yaml").write_text(textwrap.dedent("""
        apiVersion: chaosrunner/v1
        kind: SteadyState
        name: s
        service_level_objectives:
          a: {sli: {http: {url: "http://127.0.0.1:1/"}}, target: 99%}
        """))
    (tmp_path / "exp.yaml").write_text(textwrap.dedent("""
        apiVersion: chaosrunner/v1
        kind: Experiment
        name: e
        hypothesis: h
        steady_state: {from: steady.yaml}
        duration: 1s
        faults:
          - {name: f, action: fake.down, target: {prefix: api}}
        """))
    assert main(["validate", str(tmp_path / "exp.yaml")]) == 4
    err = capsys.readouterr().err
    assert "unknown action 'fake.down'" in err and "fake" not in err.split("one of:")[-1]


def test_a_registry_hands_out_its_own_instances_and_production_drivers() -> None:
    fake = FakeDriver(World(["api-1"]))
    registry = DriverRegistry([fake])
    assert registry.get("fake") is fake
    assert "fake" in registry.names() and "fake" not in DriverRegistry().names()
    assert type(registry.get("process")).__name__ == "ProcessDriver"

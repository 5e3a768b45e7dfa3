"""Blast radius over all faults and driver kinds, the default ceiling, production names
(issue 10.9), and refusals that list the instances they would hit (12.11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import sleeping_process

from chaosrunner.app.run import run_file
from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.plan import SHOWN_INSTANCES, is_production
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_backends


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Path]:
    with sleeping_process(tmp_path / "sleeper.pid"):
        yield tmp_path / "sleeper.pid"


def plan(tmp_path: Path, faults: str, radius: str = "",
         capsys: pytest.CaptureFixture[str] | None = None,
         world: World | None = None) -> tuple[int, str]:
    """`chaosrunner plan` of the file; `fake.*` actions run on `world`."""
    (tmp_path / "steady.yaml").write_text(fake_steady_state(latency=False, window=None))
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: chaosrunner/v1
        kind: Experiment
        name: radius
        hypothesis: it holds
        steady_state: {from: steady.yaml, before: 1s, after: 1s, interval: 250ms}
        duration: 5s
        """) + radius + "faults:\n" + textwrap.dedent(faults))
    options = RunOptions(state_dir=tmp_path / "state", dry_run=True)
    backends = fake_backends(world or World(["api-1", "api-2", "api-3", "api-4"]))
    code = run_file(path, options, backends=backends).exit_code
    out = capsys.readouterr() if capsys is not None else None
    return code, (out.out + out.err) if out is not None else ""


FAKE_ONE = """\
- name: down
  action: fake.down
  target: {prefix: api}
  select: {names: [api-1]}
"""


def test_max_targets_counts_instances_across_driver_kinds(
        world: World, sleeper: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pause = f"- name: pause\n  action: process.pause\n  target: {{pid_file: {sleeper}}}\n"
    code, out = plan(tmp_path, FAKE_ONE + pause, "blast_radius: {max_targets: 1}\n", capsys,
                     world)
    assert code == 3, out
    assert "2 instances" in out and "api-1" in out and f"pid {sleeper.read_text()}" in out
    code, out = plan(tmp_path, FAKE_ONE + pause, "blast_radius: {max_targets: 2}\n", capsys,
                     world)
    assert code == 0, out


@pytest.mark.parametrize(("select", "allowed"), [
    ("all", False),               # 4 instances, one fault
    ("{random: 2}", False),
    ("{random: 1}", True),        # 1 of 4 = 25%
])
def test_default_ceiling_without_blast_radius(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        select: str, allowed: bool) -> None:
    fault = f"- name: down\n  action: fake.down\n  target: {{prefix: api}}\n  select: {select}\n"
    code, out = plan(tmp_path, fault, "", capsys, world)
    assert code == (0 if allowed else 3), out
    if not allowed:
        assert "default ceiling" in out and "api-" in out
        code, out = plan(tmp_path, fault, "blast_radius: {max_targets: 4, max_percent: 100%}\n",
                         capsys, world)
        assert code == 0, out  # raised explicitly


def test_default_ceiling_allows_the_one_instance_a_selector_names(
        world: World, sleeper: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pause = f"- name: pause\n  action: process.pause\n  target: {{pid_file: {sleeper}}}\n"
    code, out = plan(tmp_path, pause, "", capsys)
    assert code == 0, out


def test_default_ceiling_with_half_the_matches_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = plan(tmp_path, "- name: down\n  action: fake.down\n  target: {prefix: api}\n"
                     "  select: {random: 1}\n", "", capsys, World(["api-1", "api-2"]))
    assert code == 3 and "50%" in out and "max_percent" in out


@pytest.fixture
def many_processes() -> Iterator[None]:
    """More processes than a refusal lists, so '.' matches more whatever the machine runs (a
    CI container may hold only three)."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
             for _ in range(SHOWN_INSTANCES + 2)]
    yield
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.usefixtures("many_processes")
def test_cmdline_regex_dot_does_not_plan_every_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fault = "- name: all\n  action: process.pause\n  target: {cmdline_regex: '.'}\n"
    code, out = plan(tmp_path, fault, "", capsys)
    assert code == 3 and "instances" in out and "and " in out  # the list is shortened


@pytest.mark.parametrize("name", ["production", "Production", " prod ", "PRD", "eu-production",
                                  "prod-eu-1", "us_prd"])
def test_production_names(name: str) -> None:
    assert is_production(name)


@pytest.mark.parametrize("name", ["staging", "preprod", "products", "reproduction", "dev"])
def test_not_production_names(name: str) -> None:
    assert not is_production(name)


def test_production_names_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_PRODUCTION_NAMES", "live, prod")
    assert is_production("eu-live") and not is_production("production")


def test_default_ceiling_allows_one_instance_chosen_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = World(["api-1", "api-2"])
    code, out = plan(tmp_path, FAKE_ONE, "", capsys, world)
    assert code == 0, out
    two = FAKE_ONE.replace("[api-1]", "[api-1, api-2]")
    code, out = plan(tmp_path, two, "", capsys, world)
    assert code == 3 and "more than blast_radius.max_targets 1" in out, out

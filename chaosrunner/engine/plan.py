"""Plan: resolve targets, apply `select`, enforce blast radius, environment and exec rules.

Everything here runs before the first injection; any refusal leaves the system untouched.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaosrunner.drivers.base import Driver, DriverContext, Instance, get_driver
from chaosrunner.errors import (
    BlastRadiusExceeded,
    EnvironmentRefused,
    ExecNotAllowed,
    TargetNotFound,
)
from chaosrunner.spec.models import (
    BlastRadius,
    Fault,
    NamesPick,
    PercentPick,
    RandomPick,
)
from chaosrunner.spec.validate import ExperimentBundle

PRODUCTION = re.compile(r"^prod", re.IGNORECASE)


@dataclass(frozen=True)
class PlannedFault:
    fault: Fault
    driver: Driver
    params: dict[str, Any]
    instances: tuple[Instance, ...]
    matched: int
    start: float
    end: float | None  # offset of the timed revert; None: at rollback

    @property
    def targets(self) -> list[str]:
        return [instance.name for instance in self.instances]


@dataclass(frozen=True)
class Plan:
    faults: tuple[PlannedFault, ...]
    duration: float

    def describe(self) -> list[dict[str, Any]]:
        return [{"fault": p.fault.name, "action": p.fault.action, "matched": p.matched,
                 "targets": p.targets, "at": p.start, "until": p.end} for p in self.faults]


def check_environment(environment: str, allow_production: bool) -> None:
    if PRODUCTION.match(environment) and not allow_production:
        raise EnvironmentRefused(
            f"environment {environment!r} looks like production; pass --allow-production "
            "if you really mean to run this experiment there")


def check_exec(bundle: ExperimentBundle, drivers: dict[str, Driver], allow_exec: bool) -> None:
    if allow_exec:
        return
    for fault in bundle.experiment.faults:
        needs = getattr(drivers[fault.name], "needs_exec", None)
        if needs is not None and needs(fault.action, fault.with_):
            raise ExecNotAllowed(f"fault {fault.name!r} ({fault.action}) runs a program from "
                                 "the experiment file; pass --allow-exec to permit it")
    for name, slo in bundle.slos.items():
        if slo.sli.kind == "command":
            raise ExecNotAllowed(f"SLO {name!r} runs a command; pass --allow-exec to permit it")


def make_plan(bundle: ExperimentBundle, context: DriverContext, allow_production: bool,
              allow_exec: bool, seed: int | None = None) -> Plan:
    """Resolve and select every fault's targets; raises Refused or DriverError."""
    experiment = bundle.experiment
    check_environment(experiment.environment, allow_production)
    drivers = {f.name: get_driver(f.driver_name, context) for f in experiment.faults}
    check_exec(bundle, drivers, allow_exec)
    rng = random.Random(seed)
    planned = [plan_fault(f, drivers[f.name], experiment.blast_radius, experiment.duration, rng)
               for f in experiment.faults]
    check_total_targets(planned, experiment.blast_radius)
    check_overlaps(planned, experiment.duration)
    return Plan(tuple(planned), experiment.duration)


def check_overlaps(planned: Sequence[PlannedFault], duration: float) -> None:
    """Two faults on one instance at the same time must compose, or the revert of one
    would undo the other (a timed SIGCONT resuming what a second pause still wants
    paused). Drivers say what composes (`composes(action_a, action_b)`); by default
    nothing does."""
    for i, first in enumerate(planned):
        for second in planned[i + 1:]:
            if first.fault.driver_name != second.fault.driver_name:
                continue
            if not _windows_overlap(first, second, duration):
                continue
            shared = {x.id for x in first.instances} & {x.id for x in second.instances}
            composes = getattr(first.driver, "composes", None)
            if shared and not (composes and composes(first.fault.action, second.fault.action)):
                name = next(x.name for x in first.instances if x.id in shared)
                raise BlastRadiusExceeded(
                    f"faults {first.fault.name!r} and {second.fault.name!r} both hit {name} "
                    "at the same time, and taking one back would undo the other; give them "
                    "separate at/for windows or different targets")


def _windows_overlap(first: PlannedFault, second: PlannedFault, duration: float) -> bool:
    first_end = duration if first.end is None else first.end
    second_end = duration if second.end is None else second.end
    return first.start < second_end and second.start < first_end


def plan_fault(fault: Fault, driver: Driver, radius: BlastRadius, duration: float,
               rng: random.Random) -> PlannedFault:
    params = driver.validate(fault.action, fault.target, fault.with_)
    # Drivers with namespaces (kubernetes) refuse targets outside blast_radius.namespaces.
    check_namespaces = getattr(driver, "check_namespaces", None)
    if check_namespaces is not None and radius.namespaces is not None:
        check_namespaces(fault.target, radius.namespaces)
    matched = driver.resolve(fault.action, fault.target)
    if not matched:
        raise TargetNotFound(f"fault {fault.name!r}: target {fault.target} matches nothing; "
                             "check the selector and that the target is running")
    chosen = select_instances(fault, matched, rng)
    check_percent(fault, len(chosen), len(matched), radius)
    return PlannedFault(fault, driver, params, tuple(chosen), len(matched), fault.at,
                        timed_revert(fault, driver, params, duration))


def timed_revert(fault: Fault, driver: Driver, params: dict[str, Any],
                 duration: float) -> float | None:
    if fault.for_ is not None:
        return fault.at + fault.for_
    after = getattr(driver, "revert_after", None)
    seconds: float | None = after(params) if after is not None else None
    if seconds is not None:
        return min(duration, fault.at + seconds)
    return None


def select_instances(fault: Fault, matched: Sequence[Instance],
                     rng: random.Random) -> list[Instance]:
    pick = fault.select
    ordered = sorted(matched, key=lambda i: i.name)
    if pick == "all":
        return ordered
    if isinstance(pick, RandomPick):
        if pick.random > len(ordered):
            raise BlastRadiusExceeded(f"fault {fault.name!r}: select random {pick.random} but "
                                      f"only {len(ordered)} instances match")
        return rng.sample(ordered, pick.random)
    if isinstance(pick, PercentPick):
        count = math.floor(pick.percent * len(ordered) + 1e-9)
        if count < 1:
            raise BlastRadiusExceeded(
                f"fault {fault.name!r}: {pick.percent:.0%} of {len(ordered)} instances is "
                "less than one; select {random: 1} or more instances")
        return rng.sample(ordered, count)
    assert isinstance(pick, NamesPick)
    by_name = {i.name: i for i in ordered}
    missing = [n for n in pick.names if n not in by_name]
    if missing:
        raise TargetNotFound(f"fault {fault.name!r}: select names {missing} match no running "
                             f"instance; matched: {sorted(by_name)}")
    return [by_name[n] for n in pick.names]


def check_percent(fault: Fault, chosen: int, matched: int, radius: BlastRadius) -> None:
    if radius.max_percent is not None and chosen / matched > radius.max_percent + 1e-9:
        raise BlastRadiusExceeded(
            f"fault {fault.name!r} would hit {chosen} of {matched} instances "
            f"({chosen / matched:.0%}), more than blast_radius.max_percent "
            f"{radius.max_percent:.0%}; use select: {{random: N}} or narrow the target")
    if radius.max_targets is not None and chosen > radius.max_targets:
        raise BlastRadiusExceeded(
            f"fault {fault.name!r} would hit {chosen} instances, more than "
            f"blast_radius.max_targets {radius.max_targets}")


def check_total_targets(planned: Sequence[PlannedFault], radius: BlastRadius) -> None:
    """max_targets caps the instances of one kind that all faults together touch: two
    docker faults on two containers count two; a proxy slowed in front of the one
    container that is killed (DESIGN.md 2.2's example) is one instance of each kind."""
    if radius.max_targets is None:
        return
    touched: dict[str, set[str]] = {}
    for item in planned:
        touched.setdefault(item.fault.driver_name, set()).update(i.id for i in item.instances)
    for driver, ids in touched.items():
        if len(ids) > radius.max_targets:
            raise BlastRadiusExceeded(
                f"the {driver} faults together touch {len(ids)} instances, more than "
                f"blast_radius.max_targets {radius.max_targets}")

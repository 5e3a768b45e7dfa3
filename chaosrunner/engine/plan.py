"""Plan: resolve targets, apply `select`, enforce blast radius, environment and exec rules.

Everything here runs before the first injection; any refusal leaves the system untouched.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaosrunner.drivers.base import Driver, DriverContext, DriverRegistry, Instance
from chaosrunner.errors import (
    BlastRadiusExceeded,
    EnvironmentRefused,
    ExecNotAllowed,
    TargetNotFound,
)
from chaosrunner.spec.models import (
    Fault,
    NamesPick,
    PercentPick,
    RandomPick,
)
from chaosrunner.spec.validate import ExperimentBundle

PRODUCTION_NAMES = ("production", "prod", "prd")
PRODUCTION_NAMES_VARIABLE = "CHAOSRUNNER_PRODUCTION_NAMES"
# Without `blast_radius` in the file: one instance per fault, and never more than this share
# of a selector's matches (a `cmdline_regex: .` must not plan every process on the host).
DEFAULT_MAX_PERCENT = 0.25
SHOWN_INSTANCES = 5


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


def production_names() -> tuple[str, ...]:
    """The words that make an environment production: $CHAOSRUNNER_PRODUCTION_NAMES
    (comma-separated) or production, prod, prd."""
    configured = os.environ.get(PRODUCTION_NAMES_VARIABLE, "")
    names = tuple(n.strip().lower() for n in configured.split(",") if n.strip())
    return names or PRODUCTION_NAMES


def is_production(environment: str) -> bool:
    """A case-insensitive word match on the trimmed name: `eu-production`, `PRD`, `prod 2`
    are production; `preprod` and `products` are not.

        >>> is_production(" EU-Production "), is_production("preprod")
        (True, False)
    """
    words = re.split(r"[^a-z0-9]+", environment.strip().lower())
    names = production_names()
    return any(word in names for word in words if word)


def check_environment(environment: str, allow_production: bool) -> None:
    if is_production(environment) and not allow_production:
        raise EnvironmentRefused(
            f"environment {environment!r} looks like production (a word out of "
            f"{', '.join(production_names())}; set {PRODUCTION_NAMES_VARIABLE} to change the "
            "list); pass --allow-production if you really mean to run this experiment there")


def check_exec(bundle: ExperimentBundle, drivers: dict[str, Driver], allow_exec: bool) -> None:
    if allow_exec:
        return
    for fault in bundle.experiment.faults:
        if drivers[fault.name].needs_exec(fault.action, fault.with_):
            raise ExecNotAllowed(f"fault {fault.name!r} ({fault.action}) runs a program from "
                                 "the experiment file; pass --allow-exec to permit it")
    for name, slo in bundle.slos.items():
        if slo.sli.kind == "command":
            raise ExecNotAllowed(f"SLO {name!r} runs a command; pass --allow-exec to permit it")


def make_plan(bundle: ExperimentBundle, context: DriverContext, allow_production: bool,
              allow_exec: bool, seed: int | None = None,
              registry: DriverRegistry | None = None) -> Plan:
    """Resolve and select every fault's targets; raises Refused or DriverError."""
    experiment = bundle.experiment
    check_environment(experiment.environment, allow_production)
    registry = registry or DriverRegistry()
    drivers = {f.name: registry.get(f.driver_name, context) for f in experiment.faults}
    check_exec(bundle, drivers, allow_exec)
    rng = random.Random(seed)
    radius = effective_radius(bundle)
    planned = [plan_fault(f, drivers[f.name], radius, experiment.duration, rng,
                          experiment.fault_params(f))
               for f in experiment.faults]
    check_total_targets(planned, radius)
    check_overlaps(planned, experiment.duration)
    return Plan(tuple(planned), experiment.duration)


@dataclass(frozen=True)
class Radius:
    """The blast radius a plan enforces: the file's, or the default ceiling."""

    max_targets: int | None
    max_percent: float | None
    namespaces: tuple[str, ...] | None
    per_fault: int | None = None  # the default ceiling's one instance per fault
    default: bool = False

    def percent_applies(self, matched: int, named: bool = False) -> bool:
        # The default share guards pattern selectors; a selector naming one instance (a pid
        # file, a container name) or `select: {names: [...]}` is the user's explicit choice.
        return self.max_percent is not None and not (self.default and (matched <= 1 or named))


def effective_radius(bundle: ExperimentBundle) -> Radius:
    """The file's blast_radius, or with none written, one instance per fault and at most
    25 % of each selector's matches; writing `blast_radius:` raises it explicitly."""
    experiment = bundle.experiment
    radius = experiment.blast_radius
    if "blast_radius" in experiment.model_fields_set:
        return Radius(radius.max_targets, radius.max_percent, radius.namespaces)
    return Radius(len(experiment.faults), DEFAULT_MAX_PERCENT, radius.namespaces,
                  per_fault=1, default=True)


def describe_instances(instances: Sequence[Instance]) -> str:
    names = sorted(instance.name for instance in instances)
    shown = ", ".join(names[:SHOWN_INSTANCES])
    more = len(names) - SHOWN_INSTANCES
    return f"{shown}, and {more} more" if more > 0 else shown


def _raise_hint(radius: Radius, key: str) -> str:
    if radius.default:
        return ("no blast_radius is written, so the default ceiling applies (one instance "
                "per fault, at most 25% of a selector's matches); narrow the target, use "
                f"select: {{random: 1}}, or raise it explicitly with blast_radius.{key}")
    return f"narrow the target, use select: {{random: N}}, or raise blast_radius.{key}"


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
            if shared and not first.driver.composes(first.fault.action, second.fault.action):
                name = next(x.name for x in first.instances if x.id in shared)
                raise BlastRadiusExceeded(
                    f"faults {first.fault.name!r} and {second.fault.name!r} both hit {name} "
                    "at the same time, and taking one back would undo the other; give them "
                    "separate at/for windows or different targets")


def _windows_overlap(first: PlannedFault, second: PlannedFault, duration: float) -> bool:
    first_end = duration if first.end is None else first.end
    second_end = duration if second.end is None else second.end
    return first.start < second_end and second.start < first_end


def plan_fault(fault: Fault, driver: Driver, radius: Radius, duration: float,
               rng: random.Random, with_: dict[str, Any] | None = None) -> PlannedFault:
    params = driver.validate(fault.action, fault.target,
                             fault.with_ if with_ is None else with_)
    # Drivers with namespaces (kubernetes) refuse targets outside blast_radius.namespaces.
    if radius.namespaces is not None:
        driver.check_namespaces(fault.target, radius.namespaces)
    matched = driver.resolve(fault.action, fault.target)
    if not matched:
        raise TargetNotFound(f"fault {fault.name!r}: target {fault.target} matches nothing; "
                             "check the selector and that the target is running")
    chosen = select_instances(fault, matched, rng)
    check_percent(fault, chosen, len(matched), radius)
    return PlannedFault(fault, driver, params, tuple(chosen), len(matched), fault.at,
                        timed_revert(fault, driver, params, duration))


def timed_revert(fault: Fault, driver: Driver, params: dict[str, Any],
                 duration: float) -> float | None:
    if fault.for_ is not None:
        return fault.at + fault.for_
    seconds = driver.revert_after(params)
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


def check_percent(fault: Fault, chosen: Sequence[Instance], matched: int,
                  radius: Radius) -> None:
    count = len(chosen)
    named = isinstance(fault.select, NamesPick)
    if radius.percent_applies(matched, named) and radius.max_percent is not None \
            and count / matched > radius.max_percent + 1e-9:
        raise BlastRadiusExceeded(
            f"fault {fault.name!r} would hit {count} of {matched} instances "
            f"({count / matched:.0%}), more than blast_radius.max_percent "
            f"{radius.max_percent:.0%}: {describe_instances(chosen)}; "
            f"{_raise_hint(radius, 'max_percent')}")
    limit = radius.per_fault if radius.per_fault is not None else radius.max_targets
    if limit is not None and count > limit:
        raise BlastRadiusExceeded(
            f"fault {fault.name!r} would hit {count} instances, more than "
            f"blast_radius.max_targets {limit}: {describe_instances(chosen)}; "
            f"{_raise_hint(radius, 'max_targets')}")


def check_total_targets(planned: Sequence[PlannedFault], radius: Radius) -> None:
    """max_targets caps the instances all faults of the experiment touch together, over
    every driver kind: a toxic, a paused process and a paused container are three."""
    if radius.max_targets is None:
        return
    touched: dict[tuple[str, str], Instance] = {}
    for item in planned:
        touched.update(((item.fault.driver_name, i.id), i) for i in item.instances)
    if len(touched) > radius.max_targets:
        raise BlastRadiusExceeded(
            f"the faults together would hit {len(touched)} instances, more than "
            f"blast_radius.max_targets {radius.max_targets}: "
            f"{describe_instances(list(touched.values()))}; "
            f"{_raise_hint(radius, 'max_targets')}")

"""Files -> validated, cross-checked models, with every problem placed at file:line key.path.

    >>> bundle = load_experiment("experiments/instance-failure.yaml")   # doctest: +SKIP
    >>> bundle.experiment.name, sorted(bundle.slos)                     # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from chaosrunner.errors import InvalidInput, SpecError
from chaosrunner.spec.loader import Document, KeyPath, load_document, resolve_vars
from chaosrunner.spec.messages import describe, did_you_mean
from chaosrunner.spec.models import (
    HTTP_STATS,
    LATENCY_STATS,
    SLO,
    Criterion,
    Experiment,
    GameDay,
    SteadyState,
)

KINDS: dict[str, type[BaseModel]] = {
    "SteadyState": SteadyState,
    "Experiment": Experiment,
    "GameDay": GameDay,
}

CHAOSTOOLKIT = "Chaos Toolkit experiment"

if TYPE_CHECKING:
    from chaosrunner.drivers.base import DriverRegistry

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ExperimentBundle:
    """An experiment with the steady state it refers to, both validated."""

    experiment: Experiment
    steady_state: SteadyState
    slos: Mapping[str, SLO]
    path: Path
    document: Document
    steady_state_path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def validate_model(document: Document, model: type[M], data: Any | None = None) -> M:
    """Validate `document.data` into `model`; errors carry file:line and key path."""
    try:
        return model.model_validate(document.data if data is None else data)
    except ValidationError as exc:
        raise SpecError(describe(exc.errors(), model, document.where)) from None


def load_kind(path: str | Path, variables: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """Load any chaosrunner file and validate it by its `kind`."""
    document = load_document(path)
    if is_chaostoolkit(document.data):  # what `run` accepts, `validate` accepts
        return CHAOSTOOLKIT, load_runnable(path, variables)
    data = resolve_vars(document, variables or {})
    if not isinstance(data, dict):
        raise SpecError([f"{document.where(())}: expected a mapping with apiVersion and kind"])
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        known = ", ".join(KINDS)
        raise SpecError([f"{document.where(('kind',))}: unknown kind {kind!r}; expected one of "
                         f"{known}"])
    if kind == "Experiment":
        return kind, load_experiment(path, variables)
    if kind == "GameDay":  # also its cron expression and every experiment it lists
        from chaosrunner.gameday.run import load_gameday

        return kind, load_gameday(Path(path), variables)
    return kind, validate_model(document, KINDS[kind], data)


def load_runnable(path: str | Path, variables: Mapping[str, str] | None = None,
                  drivers: DriverRegistry | None = None) -> ExperimentBundle:
    """What `chaosrunner run` accepts: a native Experiment or a Chaos Toolkit experiment.
    `drivers` knows the actions (default: the production drivers)."""
    document = load_document(path)
    if is_chaostoolkit(document.data):
        from chaosrunner.ctk.convert import load_ctk_bundle

        bundle: ExperimentBundle = load_ctk_bundle(Path(path), document, variables or {})
        return bundle
    return load_experiment(path, variables, drivers)


def is_chaostoolkit(data: Any) -> bool:
    """Chaos Toolkit experiments have `method` and no chaosrunner apiVersion."""
    return (isinstance(data, dict) and "apiVersion" not in data and "method" in data)


def load_steady_state(path: str | Path,
                      variables: Mapping[str, str] | None = None) -> SteadyState:
    document = load_document(path)
    return validate_model(document, SteadyState, resolve_vars(document, variables or {}))


def load_experiment(path: str | Path, variables: Mapping[str, str] | None = None,
                    drivers: DriverRegistry | None = None) -> ExperimentBundle:
    """Load an experiment and its steady state, and check every cross-reference and every
    action against `drivers` (default: the production drivers)."""
    document = load_document(path)
    data = resolve_vars(document, variables or {})
    experiment = validate_model(document, Experiment, data)
    steady_path = (Path(path).parent / experiment.steady_state.from_).resolve()
    try:
        steady = load_steady_state(steady_path, variables)
    except SpecError as exc:
        where = document.where(("steady_state", "from"))
        raise SpecError(nested_problems(where, "in the steady state it refers to",
                                        exc.problems)) from None
    slos = _selected_slos(document, experiment, steady)
    problems = [*_check_references(document, experiment, slos),
                *_check_actions(document, experiment, drivers)]
    if problems:
        raise SpecError(problems)
    return ExperimentBundle(experiment=experiment, steady_state=steady, slos=slos,
                            path=Path(path), document=document, steady_state_path=steady_path)


_PLACED = re.compile(r"^\S[^\n]*?:\d+: ")


def nested_problems(where: str, what: str, problems: list[str]) -> list[str]:
    """The problems of a file another one refers to, under the referring line. A problem
    with no line of its own (a missing file, a device) is told on the referring line."""
    unplaced = [p for p in problems if not _PLACED.match(p)]
    head = f"{where}: {what}" + (": " + "; ".join(unplaced) if unplaced else ":")
    return [head, *(p for p in problems if _PLACED.match(p))]


def _selected_slos(document: Document, experiment: Experiment,
                   steady: SteadyState) -> dict[str, SLO]:
    available = steady.service_level_objectives
    names = experiment.steady_state.slos or tuple(available)
    unknown = [(i, n) for i, n in enumerate(names) if n not in available]
    if unknown:
        raise SpecError([
            f"{document.where(('steady_state', 'slos', i))}: unknown SLO {name!r}"
            f"{did_you_mean(name, available)}; the steady state defines {', '.join(available)}"
            for i, name in unknown
        ])
    return {name: available[name] for name in names}


def _check_references(document: Document, experiment: Experiment,
                      slos: Mapping[str, SLO]) -> list[str]:
    problems: list[str] = []
    for i, criterion in enumerate(experiment.success_criteria):
        place = document.where(("success_criteria", i))
        slo = slos.get(criterion.slo)
        if slo is None:
            problems.append(f"{place}: criterion {criterion.text!r} names unknown SLO "
                            f"{criterion.slo!r}{did_you_mean(criterion.slo, slos)}; the "
                            f"experiment uses {', '.join(slos)}")
        elif criterion.stat is not None and not _stat_available(slo, criterion.stat):
            problems.append(f"{place}: SLO {criterion.slo!r} has no statistic "
                            f"{criterion.stat!r}{did_you_mean(criterion.stat, HTTP_STATS)} "
                            f"(statistics are for http probe SLIs: {', '.join(HTTP_STATS)})")
        elif (mismatch := _unit_mismatch(criterion, slo)) is not None:
            problems.append(f"{place}: criterion {criterion.text!r}: {mismatch}")
    for i, limit in enumerate(experiment.abort.budget_limits):
        key: KeyPath = ("abort", "error_budget") if len(experiment.abort.budget_limits) == 1 \
            else ("abort", "error_budget", i)
        slo = slos.get(limit.slo)
        if slo is None:
            problems.append(f"{document.where((*key, 'slo'))}: unknown SLO {limit.slo!r}"
                            f"{did_you_mean(limit.slo, slos)}; the experiment uses "
                            f"{', '.join(slos)}")
        elif slo.budget is None:
            problems.append(f"{document.where((*key, 'slo'))}: SLO {limit.slo!r} is a threshold "
                            "SLO without `objective:`, so it has no error budget to guard; "
                            "add an objective or guard a ratio SLO")
    return problems


_CRITERION_VALUE = re.compile(r"(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def _unit_mismatch(criterion: Criterion, slo: SLO) -> str | None:
    """A latency compared with a bare number (read as seconds) or a percentage, or an
    availability compared with a duration: what the user wrote is not what they meant."""
    match = _CRITERION_VALUE.search(criterion.text)
    if match is None or slo.sli.kind != "http":
        return None
    raw = match.group(2)
    stat = criterion.stat or slo.sli.effective_stat
    if stat in LATENCY_STATS and raw.endswith("%"):
        return (f"{stat} is a latency; compare it with a duration such as 2s or 300ms "
                "(availability is the ratio statistic)")
    if stat in LATENCY_STATS and re.fullmatch(r"\d+(\.\d+)?", raw) and float(raw) != 0:
        return (f"a latency needs a unit: {raw} would be read as {raw} seconds; write "
                f"{raw}ms or {raw}s")
    if stat == "availability" and not raw.endswith("%") and not re.fullmatch(r"[\d.]+", raw):
        return "availability is a ratio; compare it with a share such as 99% or 0.99"
    return None


def _stat_available(slo: SLO, stat: str) -> bool:
    return slo.sli.kind == "http" and stat in HTTP_STATS


def _check_actions(document: Document, experiment: Experiment,
                   drivers: DriverRegistry | None) -> list[str]:
    from chaosrunner.drivers.base import DriverRegistry, ParamError

    registry = drivers or DriverRegistry()
    problems: list[str] = []
    for i, fault in enumerate(experiment.faults):
        if fault.driver_name not in registry.names():
            known = ", ".join(sorted(registry.names()))
            actions = [f"{name}.{verb}" for name in registry.names()
                       for verb in registry.get(name).actions]
            problems.append(f"{document.where(('faults', i, 'action'))}: unknown action "
                            f"{fault.action!r}{did_you_mean(fault.action, actions)}; actions "
                            f"start with one of: {known}")
            continue
        if fault.for_ is not None and fault.at + fault.for_ > experiment.duration + 1e-9:
            problems.append(f"{document.where(('faults', i, 'for'))}: at + for ends after the "
                            "fault phase (duration); shorten `for` or lengthen `duration`")
        if fault.at >= experiment.duration:
            problems.append(f"{document.where(('faults', i, 'at'))}: starts at or after the "
                            "end of the fault phase (duration)")
        try:
            registry.get(fault.driver_name).validate(fault.action, fault.target,
                                                     experiment.fault_params(fault))
        except ParamError as exc:
            problems.append(f"{document.where(('faults', i, *exc.key_path))}: {exc}")
        except InvalidInput as exc:
            problems.append(f"{document.where(('faults', i, 'action'))}: {exc}")
    return problems

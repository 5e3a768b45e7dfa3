"""Files -> validated, cross-checked models, with every problem placed at file:line key.path.

    >>> bundle = load_experiment("experiments/instance-failure.yaml")   # doctest: +SKIP
    >>> bundle.experiment.name, sorted(bundle.slos)                     # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chaosrunner.errors import SpecError
from chaosrunner.spec.loader import Document, KeyPath, load_document, resolve_vars
from chaosrunner.spec.messages import describe, did_you_mean
from chaosrunner.spec.models import (
    HTTP_STATS,
    LATENCY_STATS,
    SLO,
    Criterion,
    Experiment,
    GameDay,
    RunnerConfig,
    SteadyState,
)

KINDS: dict[str, type[BaseModel]] = {
    "SteadyState": SteadyState,
    "Experiment": Experiment,
    "GameDay": GameDay,
    "Config": RunnerConfig,  # the --config file: validated like the others, never run
}

CHAOSTOOLKIT = "Chaos Toolkit experiment"

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


def is_chaostoolkit(data: Any) -> bool:
    """Chaos Toolkit experiments have `method` and no chaosrunner apiVersion."""
    return (isinstance(data, dict) and "apiVersion" not in data and "method" in data)


def load_steady_state(path: str | Path,
                      variables: Mapping[str, str] | None = None) -> SteadyState:
    document = load_document(path)
    return validate_model(document, SteadyState, resolve_vars(document, variables or {}))


def read_experiment(path: str | Path, variables: Mapping[str, str] | None = None,
                    extra_checks: Callable[[Document, Experiment], list[str]] | None = None
                    ) -> ExperimentBundle:
    """Read an experiment and its steady state, and check every cross-reference; its
    actions are checked by `extra_checks` (the drivers know them: `app.load`)."""
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
                *(extra_checks(document, experiment) if extra_checks else [])]
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

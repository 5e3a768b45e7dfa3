"""Loading any kind of file chaosrunner reads: experiments (native or Chaos Toolkit) with
their steady states and actions, steady states and game days. It sits above `spec`
(the file formats), `ctk` (the Chaos Toolkit dialect) and `drivers` (which know the
actions), so `spec` depends on none of them.

    bundle = load_runnable(Path("experiments/instance-failure.yaml"))
    kind, loaded = load_kind(Path("gamedays/q4-checkout.yaml"))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrunner.drivers.base import DriverRegistry, ParamError
from chaosrunner.errors import InvalidInput, SpecError
from chaosrunner.spec.loader import Document, KeyPath, load_document, resolve_vars
from chaosrunner.spec.messages import did_you_mean
from chaosrunner.spec.models import (
    Experiment,
    GameDay,
    NotifyTarget,
    RunnerConfig,
    SteadyState,
)
from chaosrunner.spec.validate import (
    CHAOSTOOLKIT,
    KINDS,
    ExperimentBundle,
    is_chaostoolkit,
    nested_problems,
    read_experiment,
    validate_model,
)

_CONFIG_KEYS = frozenset(field.alias or name for name, field in RunnerConfig.model_fields.items())


def load_kind(path: str | Path, variables: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """Load any chaosrunner file and validate it by its `kind`."""
    document = load_document(path)
    if is_chaostoolkit(document.data):  # what `run` accepts, `validate` accepts
        return CHAOSTOOLKIT, load_runnable(path, variables)
    data = resolve_vars(document, variables or {})
    if not isinstance(data, dict):
        raise SpecError([f"{document.where(())}: expected a mapping with apiVersion and kind"])
    kind = data.get("kind")
    if kind is None and data and set(data) <= _CONFIG_KEYS:
        kind = "Config"  # its kind is optional: `--config` reads such a file as one
    if not isinstance(kind, str) or kind not in KINDS:
        known = ", ".join(KINDS)
        raise SpecError([f"{document.where(('kind',))}: unknown kind {kind!r}; expected one of "
                         f"{known}"])
    if kind == "Experiment":
        return kind, load_experiment(path, variables)
    if kind == "GameDay":  # also its cron expression and every experiment it lists
        return kind, load_gameday(Path(path), variables)
    model = validate_model(document, KINDS[kind], data)
    problems = (check_ctk_probes(document, model) if isinstance(model, SteadyState)
                else check_notify(document, model.notify) if isinstance(model, RunnerConfig)
                else [])
    if problems:
        raise SpecError(problems)
    return kind, model


def load_runnable(path: str | Path, variables: Mapping[str, str] | None = None,
                  drivers: DriverRegistry | None = None) -> ExperimentBundle:
    """What `chaosrunner run` accepts: a native Experiment or a Chaos Toolkit experiment.
    `drivers` knows the actions (default: the production drivers)."""
    document = load_document(path)
    if is_chaostoolkit(document.data):
        # Imported here: the Chaos Toolkit models cost a third of `validate`'s cold start.
        from chaosrunner.ctk.convert import load_ctk_bundle

        bundle: ExperimentBundle = load_ctk_bundle(Path(path), document, variables or {})
        return bundle
    return load_experiment(path, variables, drivers)


def load_experiment(path: str | Path, variables: Mapping[str, str] | None = None,
                    drivers: DriverRegistry | None = None) -> ExperimentBundle:
    """Load an experiment and its steady state, and check every cross-reference and every
    action against `drivers` (default: the production drivers)."""
    bundle = read_experiment(path, variables,
                             lambda document, experiment: [
                                 *check_actions(document, experiment, drivers),
                                 *check_notify(document, experiment.notify)])
    problems = check_ctk_probes(load_document(bundle.steady_state_path), bundle.steady_state)
    if problems:
        raise SpecError(nested_problems(bundle.document.where(("steady_state", "from")),
                                        "in the steady state it refers to", problems))
    return bundle


def check_ctk_probes(document: Document, steady: SteadyState) -> list[str]:
    """A `ctk_probe` SLI's probe is checked when the file is, not when it is first run."""
    problems: list[str] = []
    for name, slo in steady.service_level_objectives.items():
        if slo.sli.ctk_probe is None:
            continue
        # Imported here: the Chaos Toolkit layer loads only for files that use it.
        from chaosrunner.ctk.activities import activity_problems

        key: KeyPath = ("service_level_objectives", name, "sli", "ctk_probe", "probe")
        problems += activity_problems(slo.sli.ctk_probe.probe, _under(document, key))
    return problems


def check_notify(document: Document, targets: Sequence[NotifyTarget]) -> list[str]:
    """Each `notify:` URL that apprise does not know is refused by `validate` as by `run`
    (URLs with `${env:...}` are checked when the run resolves them)."""
    problems: list[str] = []
    for i, target in enumerate(targets):
        if "${" in target.url.get_secret_value():
            continue
        # Imported here: apprise loads only for files that notify.
        from chaosrunner.observe.notify import open_channel

        try:
            open_channel(target, document.where(("notify", i, "url")))
        except InvalidInput as exc:
            problems.append(str(exc))
    return problems


def _under(document: Document, key: KeyPath) -> Callable[[KeyPath], str]:
    return lambda path: document.where((*key, *path))


def check_actions(document: Document, experiment: Experiment,
                   drivers: DriverRegistry | None) -> list[str]:
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


@dataclass(frozen=True)
class LoadedGameDay:
    """A validated game day with its experiment files resolved and validated."""

    gameday: GameDay
    path: Path
    experiments: tuple[tuple[str, Path, str], ...]  # (as written, resolved path, name)
    notify_places: tuple[str, ...] = ()  # 'g.yaml:7: notify[0].url', one per notify target


def load_gameday(path: Path, variables: Mapping[str, str] | None = None,
                 drivers: DriverRegistry | None = None) -> LoadedGameDay:
    """Load a GameDay file and validate every experiment it lists (paths relative to it);
    `drivers` knows their actions (default: the production drivers)."""
    document = load_document(path)
    data = resolve_vars(document, variables or {})
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind != "GameDay":
        raise SpecError([f"{document.where(('kind',))}: expected kind GameDay, got {kind!r}; "
                         "`chaosrunner gameday` runs game-day files (gamedays/*.yaml)"])
    gameday = validate_model(document, GameDay, data)
    experiments: list[tuple[str, Path, str]] = []
    problems: list[str] = check_notify(document, gameday.notify)
    if gameday.schedule is not None and not valid_cron(gameday.schedule):
        problems.append(f"{document.where(('schedule',))}: {gameday.schedule!r} is not a cron "
                        "expression; expected five fields such as \"0 10 * * TUE\" "
                        "(minute hour day-of-month month day-of-week, in UTC)")
    for i, file in enumerate(gameday.experiments):
        resolved = (path.parent / file).resolve()
        try:
            bundle = load_runnable(resolved, variables, drivers)
        except SpecError as exc:
            problems += nested_problems(document.where(("experiments", i)),
                                        f"in experiment {file}", exc.problems)
            continue
        except InvalidInput as exc:
            problems.append(f"{document.where(('experiments', i))}: {file}: {exc}")
            continue
        experiments.append((file, resolved, bundle.experiment.name))
    if problems:
        raise SpecError(problems)
    return LoadedGameDay(gameday=gameday, path=path, experiments=tuple(experiments),
                         notify_places=document.where_items(("notify",), len(gameday.notify),
                                                            ("url",)))


def valid_cron(expression: str) -> bool:
    from croniter import croniter

    return bool(croniter.is_valid(expression))

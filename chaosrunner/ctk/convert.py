"""A Chaos Toolkit experiment -> a native Experiment and SteadyState (docs/chaostoolkit.md).

The mapping:

* each steady-state probe -> an SLO `<probe> >= 1` over a `ctk_probe` SLI (1 when the
  tolerance holds); checked before the method (the `before` phase), after the method
  (success criteria on the fault phase) and again after the rollbacks (`after`);
* the hypothesis strategy -> the sampling: `continuously` / `during-method-only` sample
  every `frequency` seconds through the method; the others sample the fault phase once, at
  its end, which is the Chaos Toolkit's "after the method" check;
* each method activity -> a `python` fault calling `chaosrunner.ctk.activities.run_action`,
  placed on the timeline at the sum of the `pauses` before it;
* the rollbacks -> the revert of one fault injected first, so they run last, always
  (also on abort, Ctrl-C and through `chaosrunner recover` after a SIGKILL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaosrunner.ctk.model import Activity, CtkExperiment, Ref
from chaosrunner.errors import SpecError
from chaosrunner.spec.loader import Document
from chaosrunner.spec.models import API_VERSION, Experiment, SteadyState
from chaosrunner.spec.units import format_duration
from chaosrunner.spec.validate import ExperimentBundle, validate_model

RUN_ACTION = "chaosrunner.ctk.activities.run_action"
RUN_ROLLBACKS = "chaosrunner.ctk.activities.run_rollbacks"
NOTHING = "chaosrunner.ctk.activities.nothing"
CONTINUOUS = ("continuously", "during-method-only")
MIN_TAIL = 1.0  # the fault phase lasts at least this long after the last activity starts
MIN_AFTER = 5.0


def load_ctk(document: Document, variables: Mapping[str, str]) -> CtkExperiment:
    """Validate a CTK document; `--var K=V` overrides configuration, as in the CTK CLI."""
    ctk = validate_model(document, CtkExperiment)
    if ctk.steady_state_hypothesis is None or not ctk.steady_state_hypothesis.probes:
        raise SpecError([f"{document.where(('steady-state-hypothesis',))}: chaosrunner needs a "
                         "steady-state hypothesis with at least one probe to judge the "
                         "experiment; add one"])
    if variables:
        ctk = ctk.model_copy(update={"configuration": {**ctk.configuration, **variables}})
    return ctk


def resolve_refs(document: Document, ctk: CtkExperiment) -> dict[str, list[Activity]]:
    """Hypothesis probes, method and rollbacks with every `{ref: name}` replaced."""
    known: dict[str, Activity] = {}
    result: dict[str, list[Activity]] = {}
    assert ctk.steady_state_hypothesis is not None
    sections = (("steady-state-hypothesis", ctk.steady_state_hypothesis.probes),
                ("method", ctk.method), ("rollbacks", ctk.rollbacks))
    for section, items in sections:
        resolved: list[Activity] = []
        for i, item in enumerate(items):
            if isinstance(item, Ref):
                if item.ref not in known:
                    where = document.where((section, i, "ref")) if section != \
                        "steady-state-hypothesis" else document.where((section, "probes", i))
                    raise SpecError([f"{where}: refers to unknown activity {item.ref!r}; "
                                     "a ref names an activity defined before it"])
                resolved.append(known[item.ref])
            else:
                known.setdefault(item.name, item)
                resolved.append(item)
        result[section] = resolved
    for i, probe in enumerate(result["steady-state-hypothesis"]):
        if probe.tolerance is None:
            raise SpecError([f"{document.where(('steady-state-hypothesis', 'probes', i))}: "
                             f"probe {probe.name!r} has no tolerance; add one"])
    return result


def slug(text: str, pattern: str = r"[^A-Za-z0-9_-]+") -> str:
    value = re.sub(pattern, "-", text.strip()).strip("-").lower()
    return value if value and value[0].isalpha() else f"x-{value}".rstrip("-")


def unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result


def raw(activity: Activity) -> dict[str, Any]:
    return activity.model_dump(mode="json", exclude_defaults=True, by_alias=True)


def timeline(method: Sequence[Activity]) -> tuple[list[float], float]:
    """Offsets of the method's activities from their pauses, and the fault phase length."""
    offsets, t = [], 0.0
    for activity in method:
        t += activity.pauses.before
        offsets.append(t)
        t += activity.pauses.after
    return offsets, max(t, (offsets[-1] if offsets else 0.0) + MIN_TAIL)


def to_native(ctk: CtkExperiment, activities: Mapping[str, list[Activity]], name: str,
              steady_state_from: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The native Experiment and SteadyState, as the mappings a file would hold."""
    runtime = ctk.runtime.hypothesis
    probes = activities["steady-state-hypothesis"]
    slo_names = unique([slug(p.name, r"[^A-Za-z0-9_]+").replace("-", "_") for p in probes])
    offsets, duration = timeline(activities["method"])
    interval = runtime.frequency if runtime.strategy in CONTINUOUS else duration
    shared = {"configuration": dict(ctk.configuration), "secrets": dict(ctk.secrets)}
    steady_state = {
        "apiVersion": API_VERSION, "kind": "SteadyState", "name": name,
        "description": f"steady-state hypothesis of the Chaos Toolkit experiment {ctk.title!r}",
        "service_level_objectives": {
            slo: {"sli": {"ctk_probe": {"probe": raw(probe), **shared}}, "target": 1,
                  "op": ">=", "description": f"Chaos Toolkit probe {probe.name!r} within "
                                             "its tolerance"}
            for slo, probe in zip(slo_names, probes, strict=True)}}
    faults = _rollback_fault(activities["rollbacks"], shared)
    names = unique([slug(a.name) for a in activities["method"]])
    for fault_name, activity, at in zip(names, activities["method"], offsets, strict=True):
        faults.append({"name": fault_name, "action": "python", "at": format_duration(at),
                       "with": {"call": RUN_ACTION, "args": {"activity": raw(activity)},
                                **shared}})
    criteria = [] if runtime.strategy == "before-method-only" else \
        [f"{slo} >= 1" for slo in slo_names]
    experiment = {
        "apiVersion": API_VERSION, "kind": "Experiment", "name": name, "title": ctk.title,
        "description": ctk.description or None,
        "hypothesis": (ctk.steady_state_hypothesis.title if ctk.steady_state_hypothesis
                       else "") or ctk.title,
        "tags": list(ctk.tags),
        "steady_state": {"from": steady_state_from, "before": "0s",
                         "after": format_duration(max(interval, MIN_AFTER)),
                         "interval": format_duration(interval)},
        "duration": format_duration(duration), "faults": faults,
        "success_criteria": criteria, "rollback": "always"}
    return ({k: v for k, v in experiment.items() if v is not None}, steady_state)


def _rollback_fault(rollbacks: Sequence[Activity],
                    shared: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not rollbacks:
        return []
    return [{"name": "ctk-rollbacks", "action": "python", "at": "0s",
             "with": {"call": NOTHING,
                      "revert": {"call": RUN_ROLLBACKS,
                                 "args": {"activities": [raw(a) for a in rollbacks]}},
                      **shared}}]


def experiment_name(ctk: CtkExperiment, path: Path) -> str:
    return slug(ctk.title or path.stem, r"[^A-Za-z0-9_.-]+")[:60].rstrip("-.")


def convert_document(path: Path, document: Document, variables: Mapping[str, str],
                     steady_state_from: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load and map a CTK file; the mappings are validated as native files before returning."""
    ctk = load_ctk(document, variables)
    activities = resolve_refs(document, ctk)
    experiment, steady_state = to_native(ctk, activities, experiment_name(ctk, path),
                                         steady_state_from)
    validate_model(document, SteadyState, steady_state)
    validate_model(document, Experiment, experiment)
    return experiment, steady_state


def load_ctk_bundle(path: Path, document: Document,
                    variables: Mapping[str, str]) -> ExperimentBundle:
    """What `chaosrunner run` runs for a Chaos Toolkit file (see spec.validate.load_runnable)."""
    experiment_data, steady_data = convert_document(path, document, variables, path.name)
    steady = validate_model(document, SteadyState, steady_data)
    experiment = validate_model(document, Experiment, experiment_data)
    return ExperimentBundle(experiment=experiment, steady_state=steady,
                            slos=dict(steady.service_level_objectives), path=path,
                            document=document, steady_state_path=path)

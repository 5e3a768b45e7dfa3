"""`search:` in an experiment: the steps, and the files it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaosrunner.app.load import load_experiment
from chaosrunner.errors import SpecError
from chaosrunner.spec.models import SearchSpec

ROOT = Path(__file__).parents[2]


def test_steps_grow_by_the_factor_and_end_at_the_ceiling() -> None:
    spec = SearchSpec(start="40/s", factor="x1.5", step="10s", ceiling="200/s")
    assert spec.rates() == (40.0, 60.0, 90.0, 135.0, 200.0)
    assert spec.steps()[:2] == [[0.0, 40.0], [10.0, 60.0]]


def test_shipped_capacity_experiment_steps_its_load_fault() -> None:
    bundle = load_experiment(ROOT / "experiments" / "checkout-capacity.yaml")
    fault = bundle.experiment.search_fault()
    assert fault is not None and fault.action == "load.http"
    assert bundle.experiment.fault_params(fault)["steps"][0] == [0.0, 40.0]


def _write(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "experiments" / "checkout-capacity.yaml").read_text())
    data["steady_state"]["from"] = str(ROOT / "steady-states" / "demo-capacity.yaml")
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"duration": "20s"}, "duration is too short for the search"),
    ({"search": {"start": "50/s", "step": "5s", "ceiling": "10/s"}}, "ceiling"),
    ({"search": {"fault": "nope", "start": "5/s", "step": "1s", "ceiling": "10/s"}},
     "names no load.http fault"),
    ({"search": {"start": "5/s", "step": "1s", "ceiling": "10/s", "factor": 1}}, "factor"),
    ({"abort": {}}, "needs abort.error_budget"),
])
def test_bad_search_is_a_spec_error_with_its_place(tmp_path: Path, changes: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        load_experiment(_write(tmp_path, **changes))
    assert "x.yaml:" in str(info.value)


def test_searched_load_must_not_fix_its_own_rate(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "experiments" / "checkout-capacity.yaml").read_text())
    faults = data["faults"]
    faults[0]["with"]["rate"] = "10/s"
    with pytest.raises(SpecError, match="drop its rate/users"):
        load_experiment(_write(tmp_path, faults=faults))


def _line(t: float, step: int, rate: float, requests: int, state: str = "running",
          failures: int = 0) -> dict[str, object]:
    return {"t": t, "state": state, "step": step, "rate": rate, "requests": requests,
            "failures": failures}


def test_the_step_running_at_the_abort_is_the_breaking_point() -> None:
    from chaosrunner.load.search import SearchOutcome, _judge_steps

    lines = [_line(100 + i, i // 3, [10.0, 20.0, 40.0][i // 3],
                   sum([10, 20, 40][j // 3] for j in range(i))) for i in range(9)]
    lines.append(_line(108.4, -1, 0.0, 999, state="stopped"))
    outcome = SearchOutcome(rates=[10.0, 20.0, 40.0])
    _judge_steps(outcome, lines, abort_at=108.1)
    assert (outcome.held, outcome.broke) == (20.0, 40.0)
    assert [s.held for s in outcome.steps] == [True, True, False]
    assert outcome.held_delivered == pytest.approx(20.0)
    assert outcome.stop_seconds == pytest.approx(0.3)
    assert outcome.step_to_stop_seconds == pytest.approx(2.4)
    assert outcome.saturated_from is None


def test_a_step_that_delivers_under_90_percent_is_saturated() -> None:
    from chaosrunner.load.search import SearchOutcome, _judge_steps

    lines = [_line(0, 0, 10.0, 0), _line(1, 0, 10.0, 10), _line(2, 1, 100.0, 20),
             _line(3, 1, 100.0, 70, failures=5)]
    outcome = SearchOutcome(rates=[10.0, 100.0])
    _judge_steps(outcome, lines, abort_at=None)
    assert outcome.saturated_from == 100.0 and outcome.held == 100.0
    assert outcome.held_delivered == pytest.approx(50.0)
    assert [s.failed for s in outcome.steps] == [0.0, 0.1]


def test_the_demo_runs_the_capacity_search_only_when_named() -> None:
    from chaosrunner.cli.demo import selected

    assert selected(["checkout-capacity"]) == ["experiments/checkout-capacity.yaml"]
    assert "experiments/checkout-capacity.yaml" not in selected([])


@pytest.mark.parametrize(("changes", "key"), [
    ({"duration": "20s"}, "search"),
    ({"search": {"fault": "nope", "start": "5/s", "step": "1s", "ceiling": "10/s"}}, "search"),
    ({"abort": {}}, "search"),
])
def test_a_search_problem_names_the_line_of_search_not_the_top(
        tmp_path: Path, changes: dict[str, object], key: str) -> None:
    path = _write(tmp_path, **changes)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith(f"{key}:"))
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    assert f"x.yaml:{line}: {key}: " in str(info.value)
    assert "(top level)" not in str(info.value)


def test_repeated_fault_names_name_the_faults_line(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "experiments" / "checkout-capacity.yaml").read_text())
    path = _write(tmp_path, faults=[data["faults"][0], data["faults"][0]], search=None)
    with pytest.raises(SpecError, match="fault names must be unique") as info:
        load_experiment(path)
    assert "(top level)" not in str(info.value) and "faults" in str(info.value)

"""The demo's steady state and experiment load and mean what the demo needs."""

from __future__ import annotations

import re
from pathlib import Path

from demo_support import processes_tagged, shop_tag, start_shop

from chaosrunner.spec.loader import load_document
from chaosrunner.spec.models import Experiment, SteadyState

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments" / "instance-failure.yaml"


def _experiment() -> Experiment:
    return Experiment.model_validate(load_document(EXPERIMENT).data)


def test_demo_steady_state_has_both_slos_on_the_checkout_probe() -> None:
    steady = SteadyState.model_validate(load_document(ROOT / "steady-states/demo.yaml").data)
    availability = steady.service_level_objectives["checkout_probe"]
    latency = steady.service_level_objectives["checkout_latency"]
    for slo in (availability, latency):
        assert slo.sli.http is not None
        assert slo.sli.http.url == "http://127.0.0.1:8080/checkout"
        assert (slo.sli.http.rate, slo.sli.http.timeout) == (20.0, 1.0)
    assert availability.is_ratio and availability.target == 0.99
    assert availability.budget is not None and abs(availability.budget - 0.01) < 1e-9
    assert (latency.sli.stat, latency.op, latency.target) == ("p99", "<", 2.0)
    assert latency.holds(0.5) and not latency.holds(2.5)


def test_instance_failure_is_the_seeds_experiment_in_about_a_minute() -> None:
    experiment = _experiment()
    assert experiment.hypothesis == "System should handle 25% instance loss"
    assert experiment.environment == "staging"
    referenced = (EXPERIMENT.parent / experiment.steady_state.from_).resolve()
    assert referenced == ROOT / "steady-states" / "demo.yaml"
    ref = experiment.steady_state
    assert ref.before + experiment.duration + ref.after <= 60
    assert experiment.blast_radius.max_percent == 0.25
    (fault,) = experiment.faults
    assert (fault.action, fault.with_["signal"]) == ("process.kill", "SIGKILL")
    assert experiment.success_criteria[0].text == "checkout_probe >= 99%"
    (limit,) = experiment.abort.budget_limits
    assert (limit.slo, limit.burn_rate) == ("checkout_probe", 14.4)


def test_kill_regex_matches_only_the_demo_shops_payments(tmp_path: Path) -> None:
    """25% of 4 replicas is one: the regex must match exactly the four replicas
    of the `demo` shop, never checkout, never another shop's replicas."""
    pattern = re.compile(_experiment().faults[0].target["cmdline_regex"])
    tag = shop_tag()
    shop = start_shop(tmp_path, shop_name=tag)
    try:
        lines = {service.name: " ".join(service.process.args)  # type: ignore[arg-type]
                 for service in shop.services}
    finally:
        shop.stop()
    assert processes_tagged(tag) == []
    assert not any(pattern.search(line) for line in lines.values()), "matched another shop"
    as_demo = {name: line.replace(f"--shop {tag}", "--shop demo") for name, line in lines.items()}
    matched = sorted(name for name, line in as_demo.items() if pattern.search(line))
    assert matched == ["payments-1", "payments-2", "payments-3", "payments-4"]
    assert int(len(matched) * 0.25) == 1

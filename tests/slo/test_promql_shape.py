"""Which PromQL-string SLIs can be re-windowed, and the rewrite itself (issue 17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaosrunner.cli.main import main
from chaosrunner.slo.promql import PromQLSyntaxError, at_window, shape
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.prometheus import PrometheusSource
from chaosrunner.spec.models import SLO, SteadyState

RATIO = 'sum(rate(http_requests_total{code!~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'


@pytest.mark.parametrize("query", [
    RATIO,
    '1 - (sum(increase(errors_total[1m])) / sum(increase(requests_total[1m])))',
    "sum by (job) (rate(a[5m])) / sum by (job) (rate(b[5m]))",
    "(sum(rate(a[5m])) + sum(rate(b[5m]))) / sum(rate(c[5m]))",
    "sum(rate(a[5m]) - rate(b[5m])) / sum(rate(c[5m]))",
])
def test_ratios_of_sums_of_rates_are_rewritable(query: str) -> None:
    assert shape(query).rewritable, shape(query).reason


@pytest.mark.parametrize(("query", "why"), [
    ("sum(rate(a[5m]))", "not a ratio"),
    (f"clamp_max({RATIO}, 1)", "not a ratio"),
    ("max(rate(a[5m])) / sum(rate(b[5m]))", "max(...) is not a sum"),
    ("sum(avg_over_time(a[5m])) / sum(rate(b[5m]))", "avg_over_time() is not rate()"),
    ("sum(rate(a[5m:1m])) / sum(rate(b[5m]))", "subquery"),
    ('histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))', "not a ratio"),
])
def test_other_shapes_are_named(query: str, why: str) -> None:
    found = shape(query)
    assert not found.rewritable and found.reason is not None and why in found.reason


def test_the_rewrite_sets_every_range_and_keeps_the_rest() -> None:
    rewritten = at_window('sum(rate(x{path="/a[5m]"}[5m] offset 1m)) / sum(rate(x[5m]))', 3600)
    assert rewritten == 'sum(rate(x{path="/a[5m]"}[1h] offset 1m)) / sum(rate(x{}[1h]))'
    assert shape(RATIO).inner_range == 300.0
    assert shape(RATIO).selectors == ('http_requests_total{code!~"5.."}', "http_requests_total{}")


def test_a_string_that_is_not_promql() -> None:
    with pytest.raises(PromQLSyntaxError):
        shape("sum(rate(x[5m])")


def test_budget_at_must_be_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "shop",
        "prometheus": "http://127.0.0.1:1",
        "service_level_objectives": {"a": {"sli": RATIO, "target": "99.9%"}}}))
    assert main(["budget", str(path), "--at", "yesterday"]) == 4
    assert "--at 'yesterday'" in capsys.readouterr().err


def _source(sli: object, window: str = "30d", **extra: object) -> PrometheusSource:
    slo = SLO.model_validate({"sli": sli, "target": "99.9%", "window": window, **extra})
    steady = SteadyState.model_validate({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "s",
        "prometheus": "http://127.0.0.1:1", "service_level_objectives": {"a": slo}})
    return PrometheusSource("a", slo, steady, SourceContext())


def test_a_ratio_string_is_read_as_a_ratio_of_rates_over_each_window() -> None:
    source = _source(RATIO)
    query = source.error_ratio_query(3600)
    assert "[1h]" in query and "[5m]" not in query and "avg_over_time" not in query


def test_the_fallback_subquery_steps_by_the_strings_own_range() -> None:
    # A 10-minute step under a 5-minute rate read half of the data; the step is now 5m.
    source = _source(f"clamp_max({RATIO}, 1)")
    query = source.error_ratio_query(30 * 86400)
    assert "avg_over_time(" in query and "[30d:5m]" in query


def test_validate_names_an_approximation_without_loading_the_http_client(
        tmp_path: Path) -> None:
    # `validate` is the fast command: its note on a PromQL string needs promql-parser,
    # not the Prometheus source and its HTTP client.
    path = tmp_path / "steady.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "shop",
        "prometheus": "http://127.0.0.1:9090",
        "service_level_objectives": {"clamped": {"sli": f"clamp_max({RATIO}, 1)",
                                                 "target": "99.9%"}}}))
    script = ("import sys; from chaosrunner.cli.main import main; "
              f"code = main(['validate', {str(path)!r}]); "
              "print(code, 'httpx' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert "cannot be re-windowed" in done.stdout, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == "0 False", done.stderr

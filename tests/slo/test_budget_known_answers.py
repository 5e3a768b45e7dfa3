"""Error-budget figures against known answers, on a backfilled Prometheus TSDB (issue 17).

The data: 4 days of `http_requests_total{code}` at 1-minute resolution, 6,000 requests a
minute, 0.05 % errors, 2 % for the 30 minutes ending 3 h before the end, 10 % for the last
10 minutes. Written as OpenMetrics, turned into blocks by `promtool tsdb create-blocks-from
openmetrics` and served by a real Prometheus with 40 days of retention.

Every figure of `chaosrunner budget` (burn rates over 5m ... 3d, remaining budget, policy
band, alert state) is checked for `ratio`, PromQL-string and Sloth SLIs against
- the hand-computed standard: burn = error ratio over the window / (1 - objective),
  remaining = 1 - burn over the SLO window (over the data there is: 4 days of 30);
- Sloth-style recording rules from a rule file this test writes, loaded into the same
  Prometheus (`promtool tsdb create-blocks-from rules` evaluates them at the two moments
  checked; Prometheus also evaluates them live).
Figures are taken with `budget --at` at the end of the data and 3 h before it, which keeps
the answers exact however long the test takes. The data ends on the rule group's evaluation
slot (Prometheus places a group at hash(file, group) mod interval), so the backfilled rules
are evaluated on the data's own minute grid: no extrapolation, exact figures.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xxhash
import yaml
from prometheus_fixture import PrometheusServer, run_prometheus
from services import need

from chaosrunner.cli.main import main

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PER_MINUTE = 6000
BASE, BURST, LAST = 0.0005, 0.02, 0.10
DAYS = 4
OBJECTIVE = 0.999
BUDGET = 1 - OBJECTIVE
GROUP, RULES_FILE = "sloth", "sloth-rules.yml"
SLOTH_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
BURN_WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}
OK = 'sum(rate(http_requests_total{code!~"5.."}[5m]))'
ALL = "sum(rate(http_requests_total[5m]))"
RATIO = {"good": 'sum(increase(http_requests_total{code!~"5.."}[$window]))',
         "total": "sum(increase(http_requests_total[$window]))"}
SLOTH = {"sloth": {"service": "shop", "slo": "availability"}}


def errors_in_minute(minutes_before_end: int) -> int:
    """Errors in the minute that ends `minutes_before_end` minutes before the data's end."""
    if minutes_before_end < 10:
        return round(PER_MINUTE * LAST)
    if 180 <= minutes_before_end < 210:
        return round(PER_MINUTE * BURST)
    return round(PER_MINUTE * BASE)


def expected_burn(minutes_before_end: int, window_minutes: int) -> float:
    """The standard: error ratio over the window (of the data there is) / budget."""
    held = min(window_minutes, DAYS * 1440 - minutes_before_end)
    bad = sum(errors_in_minute(minutes_before_end + k) for k in range(held))
    return bad / (held * PER_MINUTE) / BUDGET


def eval_offset(rule_file: str, group: str, interval_seconds: int) -> float:
    """Seconds into each interval at which Prometheus evaluates a rule group: the xxhash
    of the labels {file, name} modulo the interval (rules/manager.go, Group.hash)."""
    key = b"file\xff" + rule_file.encode() + b"\xffname\xff" + group.encode() + b"\xff"
    return (xxhash.xxh64_intdigest(key) % (interval_seconds * 10**9)) / 1e9


def openmetrics(end: float) -> str:
    lines = ["# TYPE http_requests counter"]
    ok: list[str] = []
    bad: list[str] = []
    good_total = bad_total = 0
    minutes = DAYS * 1440
    for index in range(minutes + 1):
        stamp = f"{end - (minutes - index) * 60:.3f}"
        if index:
            errors = errors_in_minute(minutes - index)
            good_total += PER_MINUTE - errors
            bad_total += errors
        ok.append(f'http_requests_total{{code="200"}} {good_total} {stamp}')
        bad.append(f'http_requests_total{{code="500"}} {bad_total} {stamp}')
    return "\n".join([*lines, *ok, *bad, "# EOF"]) + "\n"


def sloth_rules() -> dict[str, Any]:
    """Sloth's recording rules for service shop, SLO availability, 99.9 % over 30 days
    (the period rule written out, as Sloth does without its optimised rules)."""
    labels = {"sloth_service": "shop", "sloth_slo": "availability"}
    rules: list[dict[str, Any]] = []
    for window in SLOTH_WINDOWS:
        rules.append({"record": f"slo:sli_error:ratio_rate{window}",
                      "expr": (f'sum(rate(http_requests_total{{code=~"5.."}}[{window}])) / '
                               f"sum(rate(http_requests_total[{window}]))"),
                      "labels": {**labels, "sloth_window": window}})
    rules.append({"record": "slo:period_error_budget_remaining:ratio",
                  "expr": ('1 - (sum(rate(http_requests_total{code=~"5.."}[30d])) / '
                           f"sum(rate(http_requests_total[30d]))) / {BUDGET!r}"),
                  "labels": labels})
    return {"groups": [{"name": GROUP, "interval": "1m", "rules": rules}]}


@dataclass
class Backfilled:
    prom: PrometheusServer
    end: float
    directory: Path

    def value(self, promql: str, at: float) -> float:
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        with urllib.request.urlopen(f"{self.prom.url}/api/v1/query?{query}", timeout=30) as r:
            result = json.load(r)["data"]["result"]
        assert len(result) == 1, (promql, result)
        return float(result[0]["value"][1])


def promtool(*args: str, cwd: Path) -> None:
    done = subprocess.run(["promtool", "tsdb", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    need("prometheus", shutil.which("prometheus") is not None and shutil.which("promtool")
         is not None, "install Debian's package: apt-get install -y prometheus")
    directory = tmp_path_factory.mktemp("backfill")
    offset = eval_offset(RULES_FILE, GROUP, 60)
    # The last minute that has fully passed, on the rule group's slot: data stays in the past.
    end = math.floor((time.time() - offset) / 60 - 1) * 60 + offset
    (directory / "data.om").write_text(openmetrics(end))
    promtool("create-blocks-from", "openmetrics", "data.om", "data", cwd=directory)
    (directory / RULES_FILE).write_text(yaml.safe_dump(sloth_rules()))
    with run_prometheus(directory, {}, retention="40d") as prom:
        prom.wait_for("count(last_over_time(http_requests_total[1h]))")
        for moment in (end - 3 * 3600, end):
            promtool("create-blocks-from", "rules", f"--url={prom.url}",
                     f"--start={moment - 60:.3f}", f"--end={moment + 1:.3f}",
                     "--output-dir=rule-blocks", RULES_FILE, cwd=directory)
    for block in (directory / "rule-blocks").iterdir():
        block.rename(directory / "data" / block.name)
    with run_prometheus(directory, {}, retention="40d",
                        rule_files=[directory / RULES_FILE]) as prom:
        prom.wait_for("count(last_over_time(http_requests_total[1h]))")
        data = Backfilled(prom, end, directory)
        stamp = data.value("timestamp(slo:sli_error:ratio_rate5m)", end)
        assert stamp == pytest.approx(end, abs=0.001), (
            "the backfilled Sloth rules were not evaluated on the data's slot: has "
            "Prometheus changed how it places rule groups?")
        yield data


def steady_state(directory: Path) -> Path:
    slos = {
        "ratio_30d": {"sli": {"ratio": RATIO}, "target": "99.9%", "window": "30d"},
        "promql_30d": {"sli": f"{OK} / {ALL}", "target": "99.9%", "window": "30d"},
        "sloth_30d": {"sli": SLOTH, "target": "99.9%", "window": "30d"},
        "ratio_3d": {"sli": {"ratio": RATIO}, "target": "99.9%", "window": "3d"},
        "promql_3d": {"sli": '1 - (sum(rate(http_requests_total{code=~"5.."}[1m])) / '
                             "sum(rate(http_requests_total[1m])))",
                      "target": "99.9%", "window": "3d"},
        "scaled_3d": {"sli": {"ratio": RATIO}, "target": "99.9%", "window": "3d",
                      "alerting": "window-scaled"},
    }
    path = directory / "steady.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "backfilled",
        "prometheus": "${PROMETHEUS_URL}", "service_level_objectives": slos}))
    return path


def budget_json(data: Backfilled, at: float, capsys: pytest.CaptureFixture[str],
                ) -> dict[str, dict[str, Any]]:
    path = steady_state(data.directory)
    code = main(["budget", str(path), "--var", f"PROMETHEUS_URL={data.prom.url}",
                 "--at", f"{at:.3f}", "--output", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {row["slo"]: row for row in json.loads(out)["slos"]}


MOMENTS = {"end": 0, "3h before": 180}
ANSWERS = {
    # moment: (1h burn, 30d remaining, 3d remaining, 30d band, alert of every SLO)
    "end": (17.0833, 0.22569, 0.13426, "feature_freeze", "page"),
    "3h before": (10.25, 0.39516, 0.36458, "reliability_prioritised", "none"),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_every_sli_form_gives_the_standard_figures(
        backfilled: Backfilled, capsys: pytest.CaptureFixture[str], moment: str) -> None:
    before = MOMENTS[moment]
    at = backfilled.end - before * 60
    rows = budget_json(backfilled, at, capsys)
    one_hour, remaining_30d, remaining_3d, band_30d, alert = ANSWERS[moment]
    # The hand-computed standard agrees with the figures written out above.
    assert expected_burn(before, 60) == pytest.approx(one_hour, rel=1e-4)
    assert 1 - expected_burn(before, 43200) == pytest.approx(remaining_30d, rel=1e-4)
    assert 1 - expected_burn(before, 4320) == pytest.approx(remaining_3d, rel=1e-4)
    for name in ("ratio_30d", "promql_30d", "sloth_30d", "ratio_3d", "promql_3d"):
        row = rows[name]
        for window, minutes in BURN_WINDOWS.items():
            truth = expected_burn(before, minutes)
            assert row["burn_rates"][window] == pytest.approx(truth, rel=0.01), (name, window)
            sloth = backfilled.value(f"slo:sli_error:ratio_rate{window}", at) / BUDGET
            assert row["burn_rates"][window] == pytest.approx(sloth, rel=0.01), (name, window)
        assert row["alert"] == alert, name
    for name in ("ratio_30d", "promql_30d", "sloth_30d"):
        assert rows[name]["budget_remaining"] == pytest.approx(remaining_30d, rel=0.01), name
        assert rows[name]["policy"] == band_30d, name
    sloth_remaining = backfilled.value("slo:period_error_budget_remaining:ratio", at)
    assert rows["promql_30d"]["budget_remaining"] == pytest.approx(sloth_remaining, rel=0.01)
    for name in ("ratio_3d", "promql_3d"):
        assert rows[name]["budget_remaining"] == pytest.approx(remaining_3d, rel=0.01), name


def test_window_scaled_alerting_is_the_named_variant(
        backfilled: Backfilled, capsys: pytest.CaptureFixture[str]) -> None:
    # 3 h before the end, a 3-day SLO burns 10x over 1h: the Workbook says no page, the
    # window-scaled variant (1.44 for 3 days) pages.
    rows = budget_json(backfilled, backfilled.end - 3 * 3600, capsys)
    assert rows["ratio_3d"]["alert"] == "none"
    assert rows["scaled_3d"]["alert"] == "page"
    assert rows["scaled_3d"]["alerting"] == "window-scaled"


def test_every_figure_says_how_much_of_its_window_prometheus_holds(
        backfilled: Backfilled, capsys: pytest.CaptureFixture[str]) -> None:
    rows = budget_json(backfilled, backfilled.end, capsys)
    for name in ("ratio_30d", "promql_30d"):
        row = rows[name]
        # 4 days of a 30-day window, to the coverage query's step (an hour).
        assert row["window_held"] == pytest.approx(DAYS * 86400, abs=3600)
        assert row["window_coverage"] == pytest.approx(DAYS / 30, abs=0.002)
        assert row["partial"] is True
        assert row["coverage"] == "over 4 d of the 30 d window"
        assert all(share == 1.0 for share in row["burn_coverage"].values())
    assert rows["ratio_3d"]["partial"] is False
    assert rows["ratio_3d"]["coverage"] == "over the whole 3 d window"
    path = steady_state(backfilled.directory)
    assert main(["budget", str(path), "--var", f"PROMETHEUS_URL={backfilled.prom.url}",
                 "--at", f"{backfilled.end:.3f}"]) == 0
    table = capsys.readouterr().out
    assert "22.6% partial" in table
    assert "ratio_30d: remaining budget over 4 d of the 30 d window (partial)" in table


def test_a_string_that_cannot_be_rewritten_is_named_at_validate_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "shop",
        "prometheus": "http://127.0.0.1:9090",
        "service_level_objectives": {
            "clamped": {"sli": f"clamp_max({OK} / {ALL}, 1)", "target": "99.9%"},
            "plain": {"sli": f"{OK} / {ALL}", "target": "99.9%"}}}))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "clamped" in out and "cannot be re-windowed" in out and "5m step" in out
    assert "plain" not in out.replace(str(path), "")


def test_a_subquery_fallback_has_no_gaps(backfilled: Backfilled,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # clamp_max(...) cannot be re-windowed: averaged over 5m steps (its own range). Three
    # hours before the end no edge is near a change of error rate, so the average of the
    # 5-minute ratios is the ratio: the steps tile the window.
    path = backfilled.directory / "fallback.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "fallback",
        "prometheus": backfilled.prom.url,
        "service_level_objectives": {
            "clamped": {"sli": f"clamp_max({OK} / {ALL}, 1)", "target": "99.9%"}}}))
    at = backfilled.end - 6 * 3600
    assert main(["budget", str(path), "--at", f"{at:.3f}", "--output", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["slos"][0]
    assert "cannot be re-windowed" in row["note"]
    assert row["burn_rates"]["1d"] == pytest.approx(expected_burn(360, 1440), rel=0.02)
    assert row["burn_rates"]["1h"] == pytest.approx(0.5, rel=0.01)

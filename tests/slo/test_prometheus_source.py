"""PrometheusSource against a real Prometheus scraping a real exporter every second.

One server for the module (job `shop`: 100 req/s, 2 % answered 500, 4 ms each; job `idle`:
no traffic), with recording rules shaped like Sloth's. SLOs use target 90 % (budget 10 %),
so the 2 % error ratio is a burn of 0.2 and leaves 80 % of the budget.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import free_port
from prometheus_fixture import PrometheusServer, run_prometheus
from services import need
from synthetic_traffic import SyntheticTraffic

from chaosrunner.cli.main import main
from chaosrunner.errors import InvalidInput, SourceError
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.prometheus import PrometheusSource
from chaosrunner.spec.models import SteadyState

OK = 'sum(rate(http_requests_total{job="shop",code!~"5.."}[5s]))'
ALL = 'sum(rate(http_requests_total{job="shop"}[5s]))'
AVAILABILITY = f"{OK} / {ALL}"
P99 = ('histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{job="shop"}[5s]))'
       " by (le))")
RATIO = {"good": 'sum(increase(http_requests_total{job="shop",code!~"5.."}[$window]))',
         "total": 'sum(increase(http_requests_total{job="shop"}[$window]))'}
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def sloth_rules() -> list[dict[str, Any]]:
    """The recording rules Sloth generates for service `shop`, SLO `availability`, 90 %."""
    labels = {"sloth_service": "shop", "sloth_slo": "availability",
              "sloth_id": "shop-availability"}
    rules: list[dict[str, Any]] = []
    for window in (*WINDOWS, "30d"):
        rules.append({
            "record": f"slo:sli_error:ratio_rate{window}",
            "expr": (f'sum(rate(http_requests_total{{job="shop",code=~"5.."}}[{window}])) / '
                     f'sum(rate(http_requests_total{{job="shop"}}[{window}]))'),
            "labels": labels})
    rules.append({"record": "slo:objective:ratio", "expr": "vector(0.9)", "labels": labels})
    rules.append({"record": "slo:error_budget:ratio", "expr": "vector(1 - 0.9)",
                  "labels": labels})
    rules.append({"record": "slo:period_error_budget_remaining:ratio",
                  "expr": ('1 - slo:sli_error:ratio_rate30d{sloth_id="shop-availability"} '
                           "/ 0.1"),
                  "labels": labels})
    return rules


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    need("prometheus", shutil.which("prometheus") is not None,
         "install Debian's package: apt-get install -y prometheus")
    shop = SyntheticTraffic(rate=100.0, error_ratio=0.02, latency=0.004)
    idle = SyntheticTraffic(rate=0.0)
    targets = {"shop": [shop.serve()], "idle": [idle.serve()]}
    try:
        with run_prometheus(tmp_path_factory.mktemp("prom"), targets, sloth_rules()) as prom:
            # Eight scrapes: near a series' start increase() extrapolates each series
            # toward zero on its own, which skews short-window ratios for a few seconds.
            prom.wait_for('count_over_time(http_requests_total{job="shop",code="500"}[1m]) >= 8')
            prom.wait_for('slo:sli_error:ratio_rate5m{sloth_service="shop"} >= 0')
            yield prom
    finally:
        shop.stop()
        idle.stop()


def steady(url: str | None, slos: dict[str, Any], **extra: Any) -> SteadyState:
    return SteadyState.model_validate({"apiVersion": "chaosrunner/v1", "kind": "SteadyState",
                                       "name": "t", "prometheus": url,
                                       "service_level_objectives": slos, **extra})


def source(url: str | None, sli: Any, **slo: Any) -> PrometheusSource:
    slo.setdefault("target", 0.9)
    slo.setdefault("window", "1h")
    state = steady(url, {"s": {"sli": sli, **slo}})
    return PrometheusSource("s", state.service_level_objectives["s"], state,
                            SourceContext(query_timeout=5.0, retries=1))


async def read_once(src: PrometheusSource, interval: float = 1.0) -> Any:
    try:
        return await src.read(interval)
    finally:
        await src.close()


async def status_once(src: PrometheusSource) -> Any:
    try:
        return await src.budget_status()
    finally:
        await src.close()


def eventually(src_factory: Any, ready: Any, timeout: float = 40.0) -> Any:
    """Budget status once `ready(status)` holds: subquery steps need data to land on."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        status = asyncio.run(status_once(src_factory()))
        if ready(status) or time.monotonic() > deadline:
            return status
        time.sleep(1.0)


# --- readings ------------------------------------------------------------------------------


def test_promql_reading_is_the_availability(server: PrometheusServer) -> None:
    reading = asyncio.run(read_once(source(server.url, AVAILABILITY)))
    assert reading.value == pytest.approx(0.98, abs=1e-3)
    assert reading.good is None and reading.note is None


def test_ratio_reading_counts_events_over_four_scrapes(server: PrometheusServer) -> None:
    async def scenario() -> tuple[float, float, Any]:
        src = source(server.url, {"ratio": RATIO})
        try:
            await src.start()
            return src.lookback(1.0), src.lookback(30.0), await src.read(1.0)
        finally:
            await src.close()

    short, long, reading = asyncio.run(scenario())
    assert (short, long) == (4.0, 30.0)  # 1 s scrape read from the server's config
    assert reading.value == pytest.approx(0.98, abs=1e-3)
    assert reading.good / reading.total == pytest.approx(0.98, abs=1e-3)
    assert 200 < reading.total < 800  # about 100/s over 4 s, with increase()'s extrapolation


def test_per_sli_server_overrides_the_default(server: PrometheusServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    reading = asyncio.run(read_once(source(dead, {"prometheus": {"url": server.url,
                                                                  "query": AVAILABILITY}})))
    assert reading.value == pytest.approx(0.98, abs=1e-3)


def test_sloth_reading_uses_the_recording_rules(server: PrometheusServer) -> None:
    reading = asyncio.run(read_once(source(server.url, {"sloth": {"service": "shop",
                                                                  "slo": "availability"}})))
    assert reading.value == pytest.approx(0.98, abs=1e-3)


# --- no data ---------------------------------------------------------------------------------


def test_empty_result_is_no_data(server: PrometheusServer) -> None:
    reading = asyncio.run(read_once(source(server.url, "sum(rate(no_such_metric_total[5s]))")))
    assert reading.value is None and reading.no_data
    assert "no series" in (reading.note or "")


def test_nan_is_no_data(server: PrometheusServer) -> None:
    idle = ('sum(rate(http_requests_total{job="idle",code!~"5.."}[5s])) / '
            'sum(rate(http_requests_total{job="idle"}[5s]))')
    reading = asyncio.run(read_once(source(server.url, idle)))
    assert reading.value is None
    assert "NaN" in (reading.note or "")


def test_ratio_without_traffic_is_no_data(server: PrometheusServer) -> None:
    idle = {"good": 'sum(increase(http_requests_total{job="idle",code!~"5.."}[$window]))',
            "total": 'sum(increase(http_requests_total{job="idle"}[$window]))'}
    reading = asyncio.run(read_once(source(server.url, {"ratio": idle})))
    assert reading.value is None
    assert reading.total == 0.0
    assert "no events" in (reading.note or "")


# --- errors --------------------------------------------------------------------------------


def test_several_series_are_an_error(server: PrometheusServer) -> None:
    with pytest.raises(SourceError, match="returned 2 series"):
        asyncio.run(read_once(source(server.url, "up")))


def test_bad_promql_is_rejected_with_the_server_message(server: PrometheusServer) -> None:
    with pytest.raises(SourceError, match="rejected") as caught:
        asyncio.run(read_once(source(server.url, "sum(rate(")))
    assert server.url in str(caught.value)
    assert "bad_data" in str(caught.value)


def test_server_down_is_a_source_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError, match="failed after 2 attempt") as caught:
        asyncio.run(read_once(source(url, AVAILABILITY)))
    assert url in str(caught.value)


def test_missing_server_url_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="needs a Prometheus server"):
        source(None, AVAILABILITY)


def test_server_stopping_mid_run_raises(tmp_path: Path) -> None:
    need("prometheus", shutil.which("prometheus") is not None, "apt-get install -y prometheus")
    traffic = SyntheticTraffic(rate=50.0, error_ratio=0.0)
    address = traffic.serve()
    try:
        with run_prometheus(tmp_path, {"shop": [address]}) as prom:
            prom.wait_for(f"{ALL} > 0")
            traffic.set(error_ratio=0.3)

            async def scenario() -> list[float | None]:
                src = source(prom.url, {"ratio": RATIO})
                values = []
                try:
                    # The ratio follows the exporter: poll until the new errors show.
                    for _ in range(40):
                        values.append((await src.read(1.0)).value)
                        if values[-1] is not None and abs(values[-1] - 0.7) < 0.02:
                            break
                        await asyncio.sleep(0.5)
                    prom.process.terminate()
                    prom.process.wait(timeout=15)
                    await src.read(1.0)
                finally:
                    await src.close()
                return values

            with pytest.raises(SourceError, match="cannot connect") as caught:
                asyncio.run(scenario())
            assert prom.url in str(caught.value)
    finally:
        traffic.stop()


# --- budget status -------------------------------------------------------------------------


def test_ratio_budget_status_is_computed_in_promql(server: PrometheusServer) -> None:
    status = asyncio.run(status_once(source(server.url, {"ratio": RATIO}, window="30d")))
    assert status.sli == pytest.approx(0.98, abs=1e-3)
    assert status.remaining == pytest.approx(0.8, abs=0.01)
    assert set(status.burn_rates) == set(WINDOWS)
    for window in WINDOWS:
        assert status.burn_rates[window] == pytest.approx(0.2, abs=0.01)


def test_budget_status_is_the_guards_arithmetic(server: PrometheusServer) -> None:
    # increase() extrapolates each series on its own, so good can edge past total. The
    # guard reads that as no error (slo.budget.burn_rate); so must the window figures: a
    # burn of -10 would say 1100 % of the budget is left.
    over = {"good": f"{RATIO['total']} * 1.01", "total": RATIO["total"]}
    status = asyncio.run(status_once(source(server.url, {"ratio": over}, target="99.9%")))
    assert status.burn_rates["5m"] == 0.0 and status.remaining == 1.0
    assert status.sli == 1.0
    # A 100 % target has no budget: no error is no burn (0/0 is not "no data").
    exact = {"good": RATIO["total"], "total": RATIO["total"]}
    status = asyncio.run(status_once(source(server.url, {"ratio": exact}, target="100%")))
    assert status.burn_rates["5m"] == 0.0 and status.remaining == 1.0


def test_sloth_budget_status(server: PrometheusServer) -> None:
    status = asyncio.run(status_once(source(server.url, {"sloth": {"service": "shop",
                                                                   "slo": "availability"}})))
    assert status.remaining == pytest.approx(0.8, abs=0.01)
    assert status.burn_rates["5m"] == pytest.approx(0.2, abs=0.01)
    assert status.burn_rates["3d"] == pytest.approx(0.2, abs=0.01)


def test_promql_ratio_budget_status_rewrites_the_range(server: PrometheusServer) -> None:
    status = eventually(lambda: source(server.url, AVAILABILITY),
                        lambda s: s.remaining is not None)
    assert status.remaining == pytest.approx(0.8, abs=0.01)
    assert status.burn_rates["5m"] == pytest.approx(0.2, abs=0.01)


def test_threshold_with_objective_counts_steps_meeting_the_target(
        server: PrometheusServer) -> None:
    met = eventually(lambda: source(server.url, P99, target=0.5, op="<", objective="99%"),
                     lambda s: s.remaining is not None)
    assert met.remaining == pytest.approx(1.0)
    assert met.burn_rates["5m"] == pytest.approx(0.0)
    assert met.sli is None  # a latency has no "SLI over the window"
    # p99 is about 5 ms: a 1 ms target misses every step, a burn of 1 / 1 %.
    missed = eventually(lambda: source(server.url, P99, target=0.001, op="<", objective="99%"),
                        lambda s: s.remaining is not None)
    assert missed.burn_rates["5m"] == pytest.approx(100.0)
    assert missed.remaining == pytest.approx(-99.0)


def test_threshold_without_objective_has_no_budget(server: PrometheusServer) -> None:
    src = source(server.url, P99, target=0.5, op="<")
    status = asyncio.run(status_once(src))
    assert status.remaining is None
    assert all(value is None for value in status.burn_rates.values())
    reading = asyncio.run(read_once(source(server.url, P99, target=0.5, op="<")))
    assert 0.0025 < reading.value <= 0.005


# --- the budget command ----------------------------------------------------------------------


def test_budget_command_json(server: PrometheusServer, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(json.dumps({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "shop",
        "prometheus": "http://127.0.0.1:1",  # replaced by --prometheus
        "service_level_objectives": {
            "healthy": {"sli": {"ratio": RATIO}, "target": "90%"},
            "strict": {"sli": {"ratio": RATIO}, "target": "99%"},
            "missing": {"sli": "sum(rate(no_such_metric_total[5s]))", "target": 0.9},
        }}))
    code = main(["budget", str(path), "--prometheus", server.url, "--output", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    rows = {row["slo"]: row for row in document["slos"]}
    healthy, strict, missing = rows["healthy"], rows["strict"], rows["missing"]
    assert healthy["budget_remaining"] == pytest.approx(0.8, abs=0.01)
    assert healthy["policy"] == "full_velocity" and healthy["alert"] == "none"
    # 2 % errors against a 1 % budget: burn 2 everywhere, budget overspent, a ticket.
    assert strict["burn_rates"]["1h"] == pytest.approx(2.0, abs=0.05)
    assert strict["budget_remaining"] == pytest.approx(-1.0, abs=0.05)
    assert strict["policy"] == "reliability_only" and strict["alert"] == "ticket"
    assert missing["sli"] is None and "no series" in missing["note"]
    assert missing["policy"] == "unknown"


def test_budget_command_table_and_server_down(server: PrometheusServer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(json.dumps({
        "apiVersion": "chaosrunner/v1", "kind": "SteadyState", "name": "shop",
        "prometheus": server.url,
        "service_level_objectives": {"healthy": {"sli": {"ratio": RATIO}, "target": "90%"}}}))
    assert main(["budget", str(path)]) == 0
    table = capsys.readouterr().out
    assert "healthy" in table and "full velocity" in table and "0.20" in table
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["budget", str(path), "--prometheus", dead]) == 1
    assert dead in capsys.readouterr().out


# --- credentials ---------------------------------------------------------------------------

USER, PASSWORD = "tester", "chaos-test-pw"
PASSWORD_BCRYPT = "$2a$04$W3AEY6Y9dsnT3zEPVWwnzu9Wr6gPWBpn9XJh6ZMHPf0gxB7iDzdWK"


def test_basic_auth_from_env_against_a_real_server(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    need("prometheus", shutil.which("prometheus") is not None, "apt-get install -y prometheus")
    with run_prometheus(tmp_path, {"prometheus": []},
                        basic_auth=(USER, PASSWORD, PASSWORD_BCRYPT)) as prom:
        prom.wait_for("vector(1)")
        auth = {"basic_auth": {"username": USER, "password": "${env:CR_TEST_PROM_PASSWORD}"}}

        def auth_source(**state: Any) -> PrometheusSource:
            spec = steady(prom.url, {"s": {"sli": "vector(0.995)", "target": 0.99}}, **state)
            return PrometheusSource("s", spec.service_level_objectives["s"], spec,
                                    SourceContext(retries=0))

        monkeypatch.setenv("CR_TEST_PROM_PASSWORD", PASSWORD)
        reading = asyncio.run(read_once(auth_source(prometheus_auth=auth)))
        assert reading.value == pytest.approx(0.995)

        with pytest.raises(SourceError, match="refused access"):
            asyncio.run(read_once(auth_source()))

        monkeypatch.setenv("CR_TEST_PROM_PASSWORD", "wrong-secret-value")
        with pytest.raises(SourceError, match="refused access") as caught:
            asyncio.run(read_once(auth_source(prometheus_auth=auth)))
        assert "wrong-secret-value" not in str(caught.value)

        monkeypatch.delenv("CR_TEST_PROM_PASSWORD")
        with pytest.raises(InvalidInput, match=r"\$\{env:CR_TEST_PROM_PASSWORD\}"):
            asyncio.run(read_once(auth_source(prometheus_auth=auth)))


class _TokenChecking(BaseHTTPRequestHandler):
    """Answers like Prometheus, but only to `Authorization: Bearer s3cr3t-token`."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def _answer(self) -> None:
        header = self.headers.get("Authorization", "")
        self.seen.append(header)
        if header != "Bearer s3cr3t-token":
            self._send(401, {"status": "error", "errorType": "unauthorized", "error": "no"})
        elif self.path.endswith("/status/config"):
            self._send(200, {"status": "success", "data": {"yaml": "global: {}\n"}})
        else:
            self._send(200, {"status": "success", "data": {
                "resultType": "vector", "result": [{"metric": {}, "value": [0, "0.97"]}]}})

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_bearer_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _TokenChecking)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        monkeypatch.setenv("CR_TEST_PROM_TOKEN", "s3cr3t-token")
        token = "${env:CR_TEST_PROM_TOKEN}"
        sli = {"prometheus": {"url": url, "query": "x", "bearer_token": token}}
        reading = asyncio.run(read_once(source(None, sli)))
        assert reading.value == pytest.approx(0.97)
        assert "Bearer s3cr3t-token" in _TokenChecking.seen
        # The default server's token is used for it, never sent to another server.
        default = {"prometheus_auth": {"bearer_token": token}}
        state = steady(url, {"a": {"sli": "x", "target": 0.9}}, **default)
        reading = asyncio.run(read_once(PrometheusSource(
            "a", state.service_level_objectives["a"], state, SourceContext())))
        assert reading.value == pytest.approx(0.97)
        _TokenChecking.seen.clear()
        other = f"http://localhost:{httpd.server_port}"
        state = steady(url, {"b": {"sli": {"prometheus": {"url": other, "query": "x"}},
                                   "target": 0.9}}, **default)
        with pytest.raises(SourceError, match="refused access"):
            asyncio.run(read_once(PrometheusSource(
                "b", state.service_level_objectives["b"], state, SourceContext())))
        assert _TokenChecking.seen and not any(_TokenChecking.seen)
        # A wrong token: refused, and the message does not carry it.
        monkeypatch.setenv("CR_TEST_PROM_TOKEN", "other-token")
        with pytest.raises(SourceError, match="refused access") as caught:
            asyncio.run(read_once(source(None, sli)))
        assert "other-token" not in str(caught.value)
        assert "other-token" not in repr(source(None, sli).slo)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

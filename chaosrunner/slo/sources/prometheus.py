"""SLIs read from a Prometheus server (DESIGN.md 2.1).

One source class serves four SLI kinds:

    promql       sli: "sum(rate(...[1m])) / sum(rate(...[1m]))"   instant query, one number
    prometheus   sli: {prometheus: {url, query}}                  the same, on its own server
    ratio        sli: {ratio: {good, total}}                      $window substituted; counts
    sloth        sli: {sloth: {service, slo}}                     Sloth's recording rules

Readings. An instant query (`POST /api/v1/query`) must give one number: an empty result or
NaN is "no data" (`Reading(value=None)`), several series are an error (aggregate them).
For `ratio`, `$window` is replaced with the *lookback*: the sampling interval, but at
least four scrape intervals of the server, so that `rate()`/`increase()` always see two or
more samples even when a scrape is late or missed (two would be the bare minimum and
flaps to "no data" on jitter). The scrape interval is read once from the server's
configuration (`/api/v1/status/config`, `global.scrape_interval`), 15s when it cannot be
read. With a 1s scrape and 1s sampling the lookback is 4s, so consecutive ratio readings
overlap: their good/total counts describe the lookback, not only the last interval.

Budget status (`budget_status()`): PromQL gives the error ratio over each window, and
`slo.budget` turns it into a burn rate and a remaining budget, as it does for the run's
guard (an error ratio below 0, good edging past total, is no error):
- ratio: `1 - good/total` with `$window` = the SLO window (remaining budget) and
  5m ... 3d (burn rates). Over a window longer than the server's retention this is the
  ratio over the data it has.
- promql/prometheus with a ratio SLO (`>=`, target in (0,1)) whose string is a ratio of sums
  of rate()/increase() (`slo.promql.shape`): every range selector is set to the window
  (`[5m]` -> `[1h]`, as Sloth does), giving the event ratio over the window, exact.
- Any other promql/prometheus string (`budget_method()` says so, and `validate` prints it):
  the SLI averaged over the window with a subquery, `avg_over_time((SLI >= -Inf)[W:step])`
  (the filter drops NaN steps, when there was no traffic), with the step equal to the
  string's longest range, so the steps tile the window without gaps (window/4320, at least
  10s, when it has none). Residual bias: every step weighs the same whatever its traffic,
  and the window's edge is blurred by one inner range. Threshold SLOs with `objective:` use
  the share of steps meeting the target, `avg_over_time(((SLI >= -Inf) < bool T)[W:step])`.
  Threshold SLOs without an objective have no budget: remaining and burn rates are None.
- Coverage (`held()`): how much of each window the server holds data for: the first step
  (of window/720) at which any series the SLI reads has a sample, to now. A figure over less
  than its window is partial (`WindowBurn.partial`). Sloth SLIs use the span of the
  `slo:sli_error:ratio_rate5m` series.
- `context.at` evaluates every query at that time instead of now (`budget --at`).
- sloth: `slo:period_error_budget_remaining:ratio` and `slo:sli_error:ratio_rate<W>`,
  selected by `sloth_service` and `sloth_slo`; burn rates use this file's target.

Failures: a server that cannot be reached (after `context.retries` retries with a short
back-off), answers 5xx, or rejects the query raises `SourceError` naming the SLO and the
server URL. Credentials (`bearer_token`, `basic_auth`, usually `${env:NAME}`) are resolved
only when the HTTP client is built and never appear in messages.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import httpx
import yaml

from chaosrunner.errors import InvalidInput, SourceError
from chaosrunner.secrets import display_url as _display
from chaosrunner.secrets import resolve_env_refs
from chaosrunner.slo.budget import BURN_WINDOWS, WindowBurn, budget_remaining, burn_rate
from chaosrunner.slo.promql import at_window, promql_duration, sli_shape, subquery_step
from chaosrunner.slo.sources.base import BaseSource, BudgetStatus, Reading, SourceContext
from chaosrunner.spec.models import SLO, PrometheusAuth, SteadyState

SCRAPE_INTERVAL_FALLBACK = 15.0
SCRAPES_PER_LOOKBACK = 4
COVERAGE_POINTS = 720
RETRY_BACKOFF = 0.2
PROMETHEUS_KINDS = ("promql", "prometheus", "ratio", "sloth")

_WINDOW_REF = re.compile(r"\$(?:window\b|\{window\})")
_PROM_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_PROM_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
               "y": 31536000.0}


class PrometheusSource(BaseSource):
    """An SLI computed by a Prometheus server; see the module docstring."""

    def __init__(self, name: str, slo: SLO, steady_state: SteadyState | None,
                 context: SourceContext, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(name, slo, steady_state, context)
        if slo.sli.kind not in PROMETHEUS_KINDS:
            raise InvalidInput(f"SLO {name}: a {slo.sli.kind} SLI is not read from Prometheus")
        self.url, self._auth = _server_for(name, slo, steady_state)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.scrape_interval: float | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and check the server answers (SourceError if not)."""
        if self._client is not None:
            return
        self._client = _build_client(self.name, self._auth, self.context, self._transport)
        try:
            self.scrape_interval = await self._read_scrape_interval()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # --- readings --------------------------------------------------------------------------

    async def read(self, interval: float) -> Reading:
        """The SLI now; for `ratio`, over the lookback (see `lookback`)."""
        await self.start()
        sli = self.slo.sli
        if sli.ratio is not None:
            return await self._read_ratio(self.lookback(interval))
        if sli.sloth is not None:
            error, note = await self._number(f"slo:sli_error:ratio_rate5m{self._sloth_labels()}")
            return Reading(value=None if error is None else 1.0 - error, note=note)
        value, note = await self._number(self.sli_query)
        return Reading(value=value, note=note)

    def lookback(self, interval: float) -> float:
        """Seconds a ratio reading covers: the interval, but at least four scrapes."""
        scrape = self.scrape_interval or SCRAPE_INTERVAL_FALLBACK
        return float(math.ceil(max(interval, SCRAPES_PER_LOOKBACK * scrape)))

    async def _read_ratio(self, lookback: float) -> Reading:
        ratio = self.slo.sli.ratio
        assert ratio is not None
        window = promql_duration(lookback)
        (good, _), (total, total_note) = await asyncio.gather(
            self._number(substitute_window(ratio.good, window)),
            self._number(substitute_window(ratio.total, window)))
        if total is None or total <= 0.0:
            return Reading(value=None, good=good, total=total,
                           note=total_note or f"no events in the last {window}")
        note = None
        if good is None:
            # sum() over no matching series is empty, not 0: every event was bad.
            good, note = 0.0, f"good query returned no data; counted 0 good of {total:g}"
        # increase() extrapolates each series on its own, so good can edge past total.
        value = min(max(good / total, 0.0), 1.0)
        return Reading(value=value, good=good, total=total, note=note)

    # --- budget over the SLO window --------------------------------------------------------

    async def budget_status(self) -> BudgetStatus | None:
        """Remaining budget over the SLO window and burn rates over 5m ... 3d, with coverage.

        `remaining` is a share of the window's budget (1.0 untouched, below 0 overspent),
        None when it cannot be measured; `sli` is the SLI over the window for ratio SLOs.
        Each figure says how much of its window the server holds (`WindowBurn.held`).
        """
        await self.start()
        budget = self.slo.budget
        if budget is None:
            return BudgetStatus(sli=None, remaining=None,
                                burn_rates=dict.fromkeys(BURN_WINDOWS))
        names = list(BURN_WINDOWS)
        seconds = [self.slo.window, *(BURN_WINDOWS[name] for name in names)]
        ratios = await asyncio.gather(*(self._error_ratio(w) for w in seconds))
        held = await asyncio.gather(*(self.held(w) for w in seconds))
        # The guard's arithmetic (slo.budget): PromQL gives the bad share, never the burn.
        figures = [WindowBurn(w, None if r is None else burn_rate(r, budget), h)
                   for w, r, h in zip(seconds, ratios, held, strict=True)]
        period, windows = figures[0], dict(zip(names, figures[1:], strict=True))
        period_ratio = ratios[0]
        remaining = None if period_ratio is None else budget_remaining(period_ratio, budget)
        if self.slo.sli.sloth is not None:
            remaining = await self._sloth_remaining()
        sli = None
        if self.slo.is_ratio and period_ratio is not None:
            sli = min(max(1.0 - period_ratio, 0.0), 1.0)
        return BudgetStatus(sli=sli, remaining=remaining,
                            burn_rates={name: w.burn for name, w in windows.items()},
                            period=period, windows=windows)

    async def _error_ratio(self, seconds: float) -> float | None:
        value, _ = await self._number(self.error_ratio_query(seconds))
        return value

    def error_ratio_query(self, seconds: float) -> str:
        """PromQL for the bad share of the last `seconds` (see the module docstring)."""
        window = promql_duration(seconds)
        sli = self.slo.sli
        if sli.ratio is not None:
            good = substitute_window(sli.ratio.good, window)
            total = substitute_window(sli.ratio.total, window)
            return f"1 - ({good}) / ({total})"
        if sli.sloth is not None:
            return f"slo:sli_error:ratio_rate{window}{self._sloth_labels()}"
        query = self.sli_query
        found = sli_shape(query)
        if self.slo.is_ratio and found is not None and found.rewritable:
            return f"1 - ({at_window(query, seconds)})"
        step = promql_duration(subquery_step(seconds, found))
        inner = f"(({query}) >= -Inf)"  # drops NaN steps (no traffic)
        if not self.slo.is_ratio:
            inner = f"({inner} {self.slo.op} bool {self.slo.target!r})"
        return f"1 - avg_over_time({inner}[{window}:{step}])"

    @property
    def sli_query(self) -> str:
        """The PromQL string of a promql/prometheus SLI."""
        sli = self.slo.sli
        query = sli.prometheus.query if sli.prometheus is not None else sli.promql
        assert query is not None  # one source per SLISpec, checked by the model
        return query

    async def held(self, seconds: float) -> float | None:
        """Seconds of the last `seconds` the server holds data of this SLI for.

        From the first step, of W/720, at which any of the SLI's series has a sample (within
        Prometheus's lookback); the whole window when that is the window's first step.
        None when the SLI's series cannot be told (a string promql-parser cannot read).
        """
        selectors = self.selectors()
        if not selectors:
            return None
        step = max(1.0, float(round(seconds / COVERAGE_POINTS)))
        present = " or ".join(f"count({selector}) > 0" for selector in selectors)
        query = (f"time() - min_over_time(timestamp({present})"
                 f"[{promql_duration(seconds)}:{promql_duration(step)}])")
        try:
            value, _ = await self._number(query)
        except _Rejected:
            return None  # a selector this server will not count: coverage unknown
        if value is None:
            return 0.0
        return seconds if value + step >= seconds else max(value, 0.0)

    def selectors(self) -> tuple[str, ...]:
        """The series selectors the SLI reads (for coverage); () when unknown."""
        sli = self.slo.sli
        if sli.sloth is not None:
            return (f"slo:sli_error:ratio_rate5m{self._sloth_labels()}",)
        query = substitute_window(sli.ratio.total, "1m") if sli.ratio is not None \
            else self.sli_query
        found = sli_shape(query)
        return () if found is None else found.selectors

    async def _sloth_remaining(self) -> float | None:
        value, _ = await self._number(
            f"slo:period_error_budget_remaining:ratio{self._sloth_labels()}")
        return value

    def _sloth_labels(self) -> str:
        ref = self.slo.sli.sloth
        assert ref is not None
        return (f"{{sloth_service={json.dumps(ref.service)},"
                f"sloth_slo={json.dumps(ref.slo)}}}")

    # --- HTTP ------------------------------------------------------------------------------

    async def _number(self, promql: str) -> tuple[float | None, str | None]:
        """One number from an instant query, or (None, why) for no data."""
        values = await self.query(promql)
        if not values:
            return None, "no data: the query returned no series"
        if len(values) > 1:
            raise SourceError(
                f"SLO {self.name}: the query returned {len(values)} series from "
                f"{_display(self.url)}; an SLI must be one number, aggregate it "
                f"(e.g. sum(...)): {promql}")
        if math.isnan(values[0]):
            return None, "no data: the query returned NaN"
        return values[0], None

    async def query(self, promql: str) -> list[float]:
        """Values of an instant query's series (a scalar counts as one)."""
        form = {"query": promql, "timeout": promql_duration(self.context.query_timeout)}
        if self.context.at is not None:
            form["time"] = f"{self.context.at:.3f}"
        data = await self._call("/api/v1/query", form)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [float(result[1])]
        if kind == "vector" and isinstance(result, list):
            return [float(item["value"][1]) for item in result]
        raise SourceError(f"SLO {self.name}: the query gave a {kind} from "
                          f"{_display(self.url)}, expected one number: {promql}")

    async def _call(self, path: str, form: Mapping[str, str] | None) -> dict[str, Any]:
        """POST `form` (GET when None) with retries; the `data` member of a success answer."""
        if self._client is None:
            raise SourceError(f"SLO {self.name}: the Prometheus source was not started")
        where = f"Prometheus at {_display(self.url)}"
        attempts = self.context.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF * attempt)
            try:
                url = self.url.rstrip("/") + path
                response = await (self._client.get(url) if form is None
                                  else self._client.post(url, data=form))
            except httpx.TimeoutException:
                problem = f"no answer within {self.context.query_timeout:g}s"
                continue
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__}: {exc})"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                problem = f"HTTP {response.status_code}: {_api_error(response)}"
                continue
            return self._answer(response, where, (form or {}).get("query", path))
        raise SourceError(f"SLO {self.name}: {where} failed after {attempts} attempt(s): "
                          f"{problem}; check that the server runs and the URL is right")

    def _answer(self, response: httpx.Response, where: str, what: str) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise SourceError(f"SLO {self.name}: {where} refused access (HTTP "
                              f"{response.status_code}); check bearer_token / basic_auth")
        if response.status_code >= 400:
            raise _Rejected(f"SLO {self.name}: {where} rejected the request (HTTP "
                              f"{response.status_code}: {_api_error(response)}): {what}")
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"SLO {self.name}: {where} answered with something that is not "
                              "JSON; is the URL a Prometheus server?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise SourceError(f"SLO {self.name}: {where} answered an error: "
                              f"{_api_error(response)}: {what}")
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    async def _read_scrape_interval(self) -> float:
        """The server's global scrape interval; the fallback when it does not say."""
        assert self._client is not None
        try:
            data = await self._call("/api/v1/status/config", None)
        except _Rejected:
            return SCRAPE_INTERVAL_FALLBACK  # managed servers may not expose their config
        return scrape_interval_from_config(data.get("yaml"))


# --- helpers --------------------------------------------------------------------------------


class _Rejected(SourceError):
    """The server answered 4xx (other than 401/403): bad query or unknown endpoint."""


def substitute_window(query: str, window: str) -> str:
    """Replace `$window` / `${window}` with a PromQL duration.

    >>> substitute_window("sum(increase(x[$window]))", "5m")
    'sum(increase(x[5m]))'
    """
    return _WINDOW_REF.sub(window, query)


def scrape_interval_from_config(text: Any) -> float:
    """`global.scrape_interval` (e.g. '15s', '1m30s') from Prometheus's config YAML."""
    if not isinstance(text, str):
        return SCRAPE_INTERVAL_FALLBACK
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return SCRAPE_INTERVAL_FALLBACK
    value = (config or {}).get("global", {}).get("scrape_interval") if isinstance(
        config, dict) else None
    parts = _PROM_DURATION.findall(value) if isinstance(value, str) else []
    if not parts:
        return SCRAPE_INTERVAL_FALLBACK
    return sum(float(number) * _PROM_UNITS[unit] for number, unit in parts)


def _server_for(name: str, slo: SLO,
                steady_state: SteadyState | None) -> tuple[str, PrometheusAuth | None]:
    """The server URL of an SLI and the credentials that go with it."""
    default_url = steady_state.prometheus if steady_state is not None else None
    default_auth = steady_state.prometheus_auth if steady_state is not None else None
    own = slo.sli.prometheus
    if own is not None and own.url is not None:
        has_own_auth = own.bearer_token is not None or own.basic_auth is not None
        # The default server's credentials are never sent to another server.
        auth = own if has_own_auth else (default_auth if own.url == default_url else None)
        url: str | None = own.url
    else:
        url = default_url
        auth = own if own is not None and (own.bearer_token or own.basic_auth) else default_auth
    if not url:
        raise InvalidInput(
            f"SLO {name}: a {slo.sli.kind} SLI needs a Prometheus server; set "
            "`prometheus: http://HOST:9090` in the SteadyState file, or give the SLI "
            "`prometheus: {url: ..., query: ...}`")
    if not re.match(r"^https?://", url):
        raise InvalidInput(f"SLO {name}: Prometheus URL {_display(url)!r} must start with "
                           "http:// or https://")
    return url, auth


def _build_client(name: str, auth: PrometheusAuth | None, context: SourceContext,
                  transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    headers: dict[str, str] = {}
    basic: httpx.BasicAuth | None = None
    if auth is not None and auth.bearer_token is not None:
        token = resolve_env_refs(auth.bearer_token.get_secret_value(), f"SLO {name}: bearer_token")
        headers["Authorization"] = f"Bearer {token}"
    if auth is not None and auth.basic_auth is not None:
        password = resolve_env_refs(auth.basic_auth.password.get_secret_value(),
                                  f"SLO {name}: basic_auth.password")
        basic = httpx.BasicAuth(auth.basic_auth.username, password)
    # A little slack over the server-side `timeout` so its own error message wins.
    return httpx.AsyncClient(timeout=context.query_timeout + 1.0, headers=headers, auth=basic,
                             transport=transport)


def _api_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return f"{body.get('errorType', 'error')}: {body['error']}"
    return response.reason_phrase


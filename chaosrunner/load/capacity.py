"""The capacity planner (the user's document, "Capacity Planning Process"): usage now,
its growth, the forecast, and when it crosses what the system can take.

    usage now         an instant PromQL query (`--usage`)
    growth            given (`--growth 10%/month`, compounding), or the trend: a straight
                      line fitted (least squares) to the query over `--window`
    forecast          usage at the end of each month up to `--months`
    limit             the measured breaking point minus the headroom: broke × (1 - headroom)
    months_to_limit   when the forecast reaches the limit (0: already there; None: never)

Months are 30 days. Like the document's `CapacityPlanner`, the result also gives the
capacity needed at the horizon (forecast / (1 - headroom)) and the scaling factor
against the measured capacity.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from chaosrunner.errors import InvalidInput, SourceError
from chaosrunner.secrets import resolve_env_refs
from chaosrunner.spec.models import SteadyState

MONTH = 30 * 86400.0
_PERIODS = {"day": 86400.0, "d": 86400.0, "week": 7 * 86400.0, "w": 7 * 86400.0,
            "month": MONTH, "mo": MONTH, "m": MONTH, "year": 365 * 86400.0, "y": 365 * 86400.0}
_GROWTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*(?:/|per\s+)\s*([a-z]+)\s*$", re.I)


def parse_growth(text: str) -> float:
    """Monthly compound growth from '10%/month', '2%/week', '30%/year' -> 0.1, ..."""
    match = _GROWTH.match(text)
    if not match or match.group(2).lower() not in _PERIODS:
        raise InvalidInput(f"--growth {text!r}: write a percentage per period, e.g. "
                           "10%/month, 2%/week or 30%/year")
    per_period = float(match.group(1)) / 100
    if per_period <= -1:
        raise InvalidInput(f"--growth {text!r}: usage cannot shrink by 100% or more")
    return float((1 + per_period) ** (MONTH / _PERIODS[match.group(2).lower()]) - 1)


@dataclass
class Trend:
    """A straight line through the usage over the window."""

    slope_per_second: float
    points: int
    window_seconds: float
    history: list[tuple[float, float]] = field(default_factory=list)  # (t, value), for charts


@dataclass
class CapacityPlan:
    usage_query: str
    current: float
    months: int
    headroom: float
    model: str  # "compound" (given growth) or "linear" (trend)
    growth_per_month: float  # compound share, or the trend's slope / current
    forecast: list[float]  # month 0 .. months
    breaking_point: float | None = None
    breaking_point_source: str | None = None
    limit: float | None = None
    months_to_limit: float | None = None
    required_capacity: float | None = None
    scaling_factor: float | None = None
    recommendation: str = ""
    trend: Trend | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.trend is not None:
            data["trend"].pop("history")
        return data


def plan_capacity(usage_query: str, current: float, months: int, headroom: float,
                  growth: float | None, trend: Trend | None, breaking_point: float | None,
                  breaking_point_source: str | None = None) -> CapacityPlan:
    """The forecast and, with a breaking point, when it is reached (pure arithmetic)."""
    if growth is not None:
        model, forecast = "compound", [current * (1 + growth) ** m for m in range(months + 1)]
        monthly = growth
    else:
        assert trend is not None
        step = trend.slope_per_second * MONTH
        model, forecast = "linear", [max(0.0, current + step * m) for m in range(months + 1)]
        monthly = step / current if current > 0 else 0.0
    plan = CapacityPlan(usage_query, current, months, headroom, model, round(monthly, 6),
                        [round(v, 4) for v in forecast], breaking_point, breaking_point_source,
                        trend=trend)
    plan.required_capacity = round(forecast[-1] / (1 - headroom), 4)
    if breaking_point is not None and breaking_point > 0:
        plan.limit = round(breaking_point * (1 - headroom), 4)
        plan.scaling_factor = round(plan.required_capacity / breaking_point, 4)
        plan.months_to_limit = months_until(current, plan.limit, model, growth, trend)
    plan.recommendation = recommend(plan)
    return plan


def months_until(current: float, limit: float, model: str, growth: float | None,
                 trend: Trend | None) -> float | None:
    if current >= limit:
        return 0.0
    if model == "compound":
        assert growth is not None
        return round(math.log(limit / current) / math.log1p(growth), 2) if growth > 0 else None
    assert trend is not None
    per_month = trend.slope_per_second * MONTH
    return round((limit - current) / per_month, 2) if per_month > 0 else None


def recommend(plan: CapacityPlan) -> str:
    if plan.limit is None:
        return ("no breaking point measured: run a search experiment (search:) or give "
                "--breaking-point, to know when the forecast outgrows the system")
    when = plan.months_to_limit
    if when == 0:
        return (f"usage is already above the limit ({plan.limit:g} = breaking point minus "
                f"{plan.headroom:.0%} headroom): scale now")
    if when is None or when > plan.months:
        return (f"the forecast stays under the limit for the next {plan.months} months; "
                f"re-measure the breaking point after significant changes")
    return (f"the forecast reaches the limit in {when:g} months: scale by "
            f"×{plan.scaling_factor:g} (to {plan.required_capacity:g}) before then")


# --- Prometheus ----------------------------------------------------------------------------

def prometheus_for(steady: SteadyState, url: str | None = None) -> Prometheus:
    """A client for `url`, else the SteadyState's `prometheus:` with its credentials
    (never sent to another server)."""
    target = url or steady.prometheus
    if not target or not target.startswith(("http://", "https://")):
        raise InvalidInput("a Prometheus server is needed: set `prometheus: http://HOST:9090` "
                           "in the SteadyState file, or pass --prometheus URL")
    auth = steady.prometheus_auth if target == steady.prometheus else None
    headers: dict[str, str] = {}
    basic = None
    if auth is not None and auth.bearer_token is not None:
        headers["Authorization"] = "Bearer " + resolve_env_refs(
            auth.bearer_token.get_secret_value(), "prometheus_auth.bearer_token")
    if auth is not None and auth.basic_auth is not None:
        basic = httpx.BasicAuth(auth.basic_auth.username, resolve_env_refs(
            auth.basic_auth.password.get_secret_value(), "prometheus_auth.basic_auth.password"))
    return Prometheus(target, headers, basic)


class Prometheus:
    """The two queries the planner needs, over the HTTP API."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 auth: httpx.BasicAuth | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=30.0, headers=headers or {}, auth=auth)

    def close(self) -> None:
        self.client.close()

    def instant(self, query: str, at: float | None = None) -> float:
        """The one value of `query` now (or at wall time `at`)."""
        params = {"query": query, **({"time": f"{at:.3f}"} if at is not None else {})}
        result = self._get("/api/v1/query", params)
        if not result:
            raise SourceError(f"{query!r} returned no series from {self.url}; check the "
                              "metric name and labels")
        if len(result) > 1:
            raise SourceError(f"{query!r} returned {len(result)} series; wrap it in sum(...) "
                              "so it is one number")
        return float(result[0]["value"][1])

    def trend(self, query: str, window: float) -> Trend:
        end = time.time()
        step = max(1.0, window / 200)
        result = self._get("/api/v1/query_range", {"query": query, "start": f"{end - window:.3f}",
                                                   "end": f"{end:.3f}", "step": f"{step:g}"})
        values = [(float(t), float(v)) for t, v in (result[0]["values"] if result else [])
                  if math.isfinite(float(v))]
        if len(values) < 3:
            raise SourceError(f"{query!r} has {len(values)} points over the last "
                              f"{window:g}s: not enough for a trend; give --growth instead")
        return Trend(fit_slope(values), len(values), window, values)

    def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            response = self.client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise SourceError(f"Prometheus at {self.url} cannot be reached: {exc}") from None
        body = _json(response)
        if response.status_code != 200 or body.get("status") != "success":
            raise SourceError(f"Prometheus at {self.url} refused {params['query']!r}: "
                              f"{body.get('error') or response.status_code}")
        result = body.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def fit_slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value) points."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var

"""Typed, frozen models of the three file kinds (DESIGN.md section 2).

Nothing downstream of validation touches the raw mappings: the loader hands the
data to these models, and the engine only ever sees instances of them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chaosrunner.spec.messages import did_you_mean
from chaosrunner.spec.units import Duration, Quantity, Rate, Ratio, format_duration

API_VERSION = "chaosrunner/v1"
LATENCY_STATS = ("p50", "p90", "p95", "p99", "max", "mean", "min")
HTTP_STATS = ("availability", *LATENCY_STATS)
Op = Literal["<", "<=", ">", ">=", "==", "!="]


_STATUS = {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599},
                     {"type": "string", "pattern": r"^\s*\d{3}(-\d{3})?\s*$"}]}


def _or_shorthand(schema: dict[str, Any], *shorthands: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema that also admits the short spellings its validator accepts."""
    return {"anyOf": [*shorthands, schema]}


class PlacedError(ValueError):
    """A model-level problem that belongs to one key, so the message names that key's line."""

    def __init__(self, key_path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class Frozen(BaseModel):
    """Base of every spec model: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)


# --- SLI sources ---------------------------------------------------------------------------


class RatioQueries(Frozen):
    good: str = Field(min_length=1, description="PromQL for good events; $window is substituted")
    total: str = Field(min_length=1, description="PromQL for all events; $window is substituted")


class BasicAuth(Frozen):
    username: str = Field(min_length=1)
    password: SecretStr = Field(description="write ${env:NAME}; resolved only when querying")


class PrometheusAuth(Frozen):
    """Credentials for a Prometheus server; values may be `${env:NAME}`, never logged."""

    bearer_token: SecretStr | None = Field(default=None, description="write ${env:NAME}")
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> PrometheusAuth:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("give either bearer_token or basic_auth, not both")
        return self


class PromQuery(PrometheusAuth):
    url: str | None = Field(default=None, description="Prometheus server for this SLI")
    query: str = Field(min_length=1)


class HttpProbe(Frozen):
    """Built-in synthetic traffic."""

    url: str = Field(pattern=r"^https?://", description="URL the probe requests",
                     json_schema_extra={"pattern": r"^(https?://|\$\{)"})  # or ${VAR}...
    method: Literal["GET", "POST", "PUT", "HEAD", "DELETE"] = "GET"
    rate: Rate = Field(default=10.0, description="requests per second, e.g. 20/s")
    timeout: Duration = 1.0
    expect: Annotated[tuple[int | str, ...], WithJsonSchema(
        {"anyOf": [_STATUS, {"type": "array", "items": _STATUS}]})] = Field(
        default=("200-399",), description="status codes or ranges counted as good")
    max_in_flight: int = Field(default=0, ge=0,
                               description="cap on requests in flight (0: 2 x rate x timeout + 2)")
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | str) else value

    @field_validator("expect")
    @classmethod
    def _check_ranges(cls, value: tuple[int | str, ...]) -> tuple[int | str, ...]:
        for item in value:
            if isinstance(item, str) and not re.fullmatch(r"\d{3}(-\d{3})?", item.strip()):
                raise ValueError(f"expected a status code or range like 200-399, got {item!r}")
        return value

    def is_expected(self, status: int) -> bool:
        for item in self.expect:
            if isinstance(item, int) and status == item:
                return True
            if isinstance(item, str):
                low, _, high = item.strip().partition("-")
                if int(low) <= status <= int(high or low):
                    return True
        return False


class CommandSLI(Frozen):
    """A program whose stdout's last number is the SLI (needs --allow-exec)."""

    run: Annotated[tuple[str, ...], WithJsonSchema({"anyOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]})] = \
        Field(min_length=1, description="argv; a string is split by shlex")
    timeout: Duration = 5.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `command: ./check.sh --json` or `command: [./check.sh, --json]`
        return {"run": value} if isinstance(value, str | list) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return _or_shorthand(handler(core_schema), {"type": "string"},
                             {"type": "array", "items": {"type": "string"}, "minItems": 1})

    @field_validator("run", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return value


class SlothRef(Frozen):
    service: str
    slo: str


class CtkProbeSLI(Frozen):
    """A Chaos Toolkit probe run every interval: 1 when its tolerance holds, else 0.

    Its checks (`probe`) are validated by chaosrunner.ctk; needs --allow-exec for python
    and process providers.
    """

    probe: dict[str, Any] = Field(description="a Chaos Toolkit probe with its tolerance")
    configuration: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration = 10.0


class SLISpec(Frozen):
    """Exactly one source. A bare PromQL string is accepted as `sli: "..."`."""

    promql: str | None = None
    ratio: RatioQueries | None = None
    prometheus: PromQuery | None = None
    http: HttpProbe | None = None
    command: CommandSLI | None = None
    sloth: SlothRef | None = None
    ctk_probe: CtkProbeSLI | None = None
    stat: str | None = Field(default=None,
                             description="for http: availability or p50..p99/max/mean")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"promql": value}
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return _or_shorthand(handler(core_schema), {"type": "string", "description": "PromQL"})

    @model_validator(mode="after")
    def _exactly_one(self) -> SLISpec:
        given = [name for name in SOURCE_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "an SLI needs exactly one source out of a PromQL string, ratio, prometheus, "
                f"http, command, sloth, ctk_probe; got {', '.join(given) or 'none'}"
            )
        # Here, not in the field validator: only once every key is valid, so a typo in
        # `http:` or a bad rate is one error, not also "stat ... is only for http SLIs".
        if self.stat is not None and self.http is None:
            raise ValueError(f"stat {self.stat!r} is only for http SLIs (the probe "
                             "measures it)")
        return self

    @field_validator("stat")
    @classmethod
    def _known_stat(cls, value: str | None) -> str | None:
        if value is not None and value not in HTTP_STATS:
            raise ValueError(f"unknown statistic {value!r}{did_you_mean(value, HTTP_STATS)}; "
                             f"the statistics are {', '.join(HTTP_STATS)}")
        return value

    @property
    def kind(self) -> str:
        return next(name for name in SOURCE_KINDS if getattr(self, name) is not None)

    @property
    def effective_stat(self) -> str:
        return self.stat or "availability"


SOURCE_KINDS = ("promql", "ratio", "prometheus", "http", "command", "sloth", "ctk_probe")


class SLO(Frozen):
    sli: SLISpec
    target: Quantity = Field(description="number, ratio (99%) or, for latency, duration (400ms)")
    op: Op = ">="
    objective: Ratio | None = Field(default=None,
                                    description="share of samples that must meet the target")
    window: Duration = 30 * 86400.0
    error_budget_policy: str | None = None
    description: str | None = None
    alerting: Literal["workbook", "window-scaled"] = Field(
        default="workbook", description="page/ticket factors: the SRE Workbook's fixed 14.4, "
        "6, 3, 1 (workbook), or scaled with the SLO window (window-scaled)")

    @field_validator("target", mode="before")
    @classmethod
    def _latency_has_unit(cls, value: Any, info: ValidationInfo) -> Any:
        sli = info.data.get("sli")
        bare = (isinstance(value, int | float) and not isinstance(value, bool)) or \
            (isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value) is not None)
        if isinstance(sli, SLISpec) and sli.kind == "http" and \
                sli.effective_stat in LATENCY_STATS and bare and float(value) != 0:
            raise ValueError(f"a latency target needs a unit: {value} would be read as "
                             f"{value} seconds; write {value}ms or {value}s")
        return value

    @field_validator("target")
    @classmethod
    def _availability_is_a_ratio(cls, value: float, info: ValidationInfo) -> float:
        sli = info.data.get("sli")
        ratio = isinstance(sli, SLISpec) and (sli.kind in ("ratio", "sloth") or (
            sli.kind == "http" and sli.effective_stat == "availability"))
        if ratio and value > 1:
            hint = f"; did you mean {value:g}%?" if value <= 100 else ""
            raise ValueError(f"an availability target is a ratio between 0 and 1 (or 0% and "
                             f"100%), got {value:g}{hint}")
        return value

    @property
    def is_ratio(self) -> bool:
        """Ratio SLOs have an error budget of 1 - target (DESIGN.md 2.1)."""
        if self.sli.kind in ("ratio", "sloth"):
            return True
        if self.sli.kind == "http":
            return self.sli.effective_stat == "availability"
        return self.op == ">=" and 0.0 < self.target < 1.0

    @property
    def budget(self) -> float | None:
        """Allowed bad share: 1 - target for ratio SLOs, 1 - objective for thresholds."""
        if self.is_ratio:
            return 1.0 - self.target
        if self.objective is not None:
            return 1.0 - self.objective
        return None

    def holds(self, value: float) -> bool:
        return compare(value, self.op, self.target)


def compare(left: float, op: str, right: float) -> bool:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "==":
        return abs(left - right) <= 1e-9 * max(1.0, abs(right))
    return abs(left - right) > 1e-9 * max(1.0, abs(right))


class PolicyThresholds(Frozen):
    """Error budget policy bands (the seed's decision framework), remaining-budget shares."""

    full_velocity: Ratio = 0.5
    reliability_prioritised: Ratio = 0.25
    feature_freeze: Ratio = 0.10


class IncidentSeverity(Frozen):
    """When a run's failed probe traffic reads as an incident level (report/severity.py):
    the seed's SEV1/SEV2 shares, and when to hold the level at most `capped_at`."""

    sev1_at: Ratio = Field(default=1.0, description="failed share that is SEV1")
    sev2_above: Ratio = Field(default=0.10, description="failed share above which it is SEV2")
    min_duration: Duration = Field(default=10.0, description="failures lasting less are at "
                                   "most capped_at")
    environments: tuple[str, ...] | None = Field(
        default=None, description="environments where probe failures stand for users; "
        "elsewhere the level is at most capped_at (default: the production names)")
    capped_at: Literal["SEV1", "SEV2", "SEV3", "none"] = "SEV3"

    @model_validator(mode="after")
    def _ordered(self) -> IncidentSeverity:
        if not self.sev2_above < self.sev1_at:
            raise ValueError("sev2_above must be below sev1_at")
        return self


class SteadyState(Frozen):
    api_version: Literal["chaosrunner/v1"] = Field(alias="apiVersion")
    kind: Literal["SteadyState"]
    name: str = Field(min_length=1)
    description: str | None = None
    prometheus: str | None = Field(default=None, description="default Prometheus server URL")
    prometheus_auth: PrometheusAuth | None = Field(
        default=None, description="credentials for the default Prometheus server")
    service_level_objectives: dict[str, SLO] = Field(min_length=1)
    error_budget_policy: PolicyThresholds = Field(default_factory=PolicyThresholds)
    incident_severity: IncidentSeverity = Field(default_factory=IncidentSeverity)

    @field_validator("service_level_objectives")
    @classmethod
    def _names(cls, value: dict[str, SLO]) -> dict[str, SLO]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                raise ValueError(f"SLO name {name!r} must be letters, digits, _ or -")
        return value


# --- Seen where people look (issue 15; chaosrunner.observe) ------------------------------

NotifyEvent = Literal["start", "abort", "end", "rollback_incomplete", "halt"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("start", "abort", "end", "rollback_incomplete", "halt")


class NotifyTarget(Frozen):
    """An apprise URL (`slack://...`, `json://...`, `mailto://...`); `${env:NAME}` in it is
    resolved only when sending, and the URL is never printed (`name` or apprise's
    privacy form is shown instead)."""

    url: SecretStr = Field(description="apprise URL; put secrets in ${env:NAME}")
    name: str | None = Field(default=None, description="shown in logs and reports")
    events: tuple[NotifyEvent, ...] = Field(default=NOTIFY_EVENTS, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return _or_shorthand(handler(core_schema), {"type": "string"})

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: SecretStr) -> SecretStr:
        if "://" not in value.get_secret_value():
            raise ValueError("expected an apprise URL like json://host/path or slack://...")
        return value


class GrafanaAnnotations(Frozen):
    """Region annotations through Grafana's HTTP API (POST then PATCH /api/annotations)."""

    url: str = Field(pattern=r"^https?://", description="Grafana base URL")
    token: SecretStr | None = Field(default=None, description="service-account token; "
                                    "write ${env:NAME}")
    dashboard_uid: str | None = Field(default=None, description="default: organisation-wide")
    panel_id: int | None = Field(default=None, ge=0)
    tags: tuple[str, ...] = ()


class AnnotationsSpec(Frozen):
    grafana: GrafanaAnnotations | None = None


_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


class AlertsAbort(Frozen):
    """Firing alerts as stop conditions: from Alertmanager (API v2) or Prometheus."""

    alertmanager: str | None = Field(default=None, pattern=r"^https?://")
    prometheus: str | None = Field(default=None, pattern=r"^https?://")
    matchers: tuple[str, ...] = Field(default=(), description='e.g. severity="critical", '
                                      'service=~"checkout|payments"; all must match')

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            match = _MATCHER.match(text)
            if match is None:
                raise ValueError(f"matcher {text!r}: expected name=\"value\" with =, !=, =~ "
                                 "or !~ and the value in double quotes")
            if match.group(2) in ("=~", "!~"):
                try:
                    re.compile(match.group(3))
                except re.error as exc:
                    raise ValueError(f"matcher {text!r}: bad regular expression: {exc}") \
                        from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> AlertsAbort:
        if (self.alertmanager is None) == (self.prometheus is None):
            raise ValueError("give exactly one of alertmanager: URL or prometheus: URL")
        return self

    @property
    def parsed_matchers(self) -> tuple[tuple[str, str, str], ...]:
        """(label, op, value) per matcher; the value unescaped."""
        parsed = []
        for text in self.matchers:
            match = _MATCHER.match(text)
            assert match is not None  # checked at validation
            value = re.sub(r"\\(.)", r"\1", match.group(3))
            parsed.append((match.group(1), match.group(2), value))
        return tuple(parsed)


class RunnerConfig(Frozen):
    """`--config` (default ~/.config/chaosrunner/config.yaml): what applies to every run."""

    api_version: Literal["chaosrunner/v1"] | None = Field(default=None, alias="apiVersion")
    kind: Literal["Config"] | None = None
    notify: tuple[NotifyTarget, ...] = ()
    annotations: AnnotationsSpec | None = None
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    trace_url: str | None = Field(default=None, pattern=r"^https?://.*\{trace_id\}",
                                  description="link to a trace in your tracing UI, with "
                                  "{trace_id}; the report links the run's trace with it")
    pushgateway: str | None = Field(default=None, pattern=r"^https?://")


# --- Experiments ---------------------------------------------------------------------------


class SteadyStateRef(Frozen):
    from_: str = Field(alias="from", description="path of a SteadyState file, relative to this")
    slos: tuple[str, ...] | None = Field(default=None, description="default: all in the file")
    before: Duration = 30.0
    after: Duration = 30.0
    interval: Duration = 1.0

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value < 0.05:
            raise ValueError("interval must be at least 50ms")
        return value

    @model_validator(mode="after")
    def _interval_fits(self) -> SteadyStateRef:
        for phase, length in (("before", self.before), ("after", self.after)):
            if 0 < length < self.interval:
                raise ValueError(f"interval ({format_duration(self.interval)}) is longer than "
                                 f"{phase} ({format_duration(length)}), so the {phase}-phase "
                                 f"would take no sample; shorten interval or lengthen {phase}")
        return self


class BlastRadius(Frozen):
    max_targets: int | None = Field(default=None, ge=1)
    max_percent: Ratio | None = None
    namespaces: tuple[str, ...] | None = None


class RandomPick(Frozen):
    random: int = Field(ge=1)


class PercentPick(Frozen):
    percent: Ratio


class NamesPick(Frozen):
    names: tuple[str, ...] = Field(min_length=1)


Selection = Literal["all"] | RandomPick | PercentPick | NamesPick


class Fault(Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    action: str = Field(description="driver.action, e.g. toxiproxy.latency")
    target: dict[str, Any] = Field(default_factory=dict)
    select: Selection = "all"
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    at: Duration = 0.0
    for_: Duration | None = Field(default=None, alias="for")

    @property
    def driver_name(self) -> str:
        return self.action.split(".", 1)[0]


class ErrorBudgetAbort(Frozen):
    slo: str
    max_consumed: Ratio | None = Field(default=None,
                                       description="share of the SLO window's budget")
    burn_rate: float | None = Field(default=None, gt=0)
    windows: tuple[Duration, Duration] = (60.0, 300.0)

    @model_validator(mode="after")
    def _ordered(self) -> ErrorBudgetAbort:
        if self.windows[0] > self.windows[1]:
            raise ValueError("windows are [short, long]: the first must not be longer")
        return self


class AbortSpec(Frozen):
    error_budget: ErrorBudgetAbort | tuple[ErrorBudgetAbort, ...] | None = None
    min_budget_remaining: Ratio | None = None
    alerts: AlertsAbort | None = None

    @property
    def budget_limits(self) -> tuple[ErrorBudgetAbort, ...]:
        if self.error_budget is None:
            return ()
        if isinstance(self.error_budget, ErrorBudgetAbort):
            return (self.error_budget,)
        return self.error_budget


class Criterion(Frozen):
    """`<slo>[.<stat>] <op> <value>` parsed (see spec.criteria)."""

    text: str
    slo: str
    stat: str | None
    op: Op
    value: float

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        # Imported here: criteria import the models (cycle inside spec).
        from chaosrunner.spec.criteria import parse_criterion

        return parse_criterion(value) if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # In files a criterion is a string; the parsed fields are internal.
        return {"type": "string", "description": "<slo>[.<stat>] <op> <value>, e.g. "
                "'checkout_probe.p99 < 2s'",
                "pattern": r"^\s*[A-Za-z_][\w-]*(\.\w+)?\s*(<=|>=|==|!=|<|>)\s*\S+\s*$"}


class SearchSpec(Frozen):
    """A breaking-point search: the load.http fault's rate, stepped up under the guard."""

    fault: str | None = Field(default=None, description="the load.http fault to step "
                              "(default: the only one)")
    start: Rate = Field(description="first step's rate, e.g. 50/s")
    factor: float = Field(default=1.5, gt=1.0, description="each step's rate is the last "
                          "one's times this (1.5, x1.5)")
    step: Duration = Field(description="how long each rate is held")
    ceiling: Rate = Field(description="the last step's rate")
    production: Rate | PromQuery | None = Field(
        default=None, description="the production rate now (120/s) or a PromQL query for "
        "it, to give the headroom")

    @field_validator("factor", mode="before")
    @classmethod
    def _factor(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lstrip("x×").rstrip("x×")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SearchSpec:
        if self.ceiling < self.start:
            raise ValueError("ceiling must not be below start")
        if self.step <= 0:
            raise ValueError("step must be positive")
        if len(self.rates()) > 100:
            raise ValueError("more than 100 steps from start to ceiling; raise factor")
        return self

    def rates(self) -> tuple[float, ...]:
        """Each step's rate: start, start × factor, ... , ceiling."""
        rates = [self.start]
        while rates[-1] * self.factor < self.ceiling * (1 - 1e-9) and len(rates) <= 100:
            rates.append(rates[-1] * self.factor)
        if rates[-1] < self.ceiling * (1 - 1e-9):
            rates.append(self.ceiling)
        return tuple(round(r, 3) for r in rates)

    def steps(self) -> list[list[float]]:
        """[[offset_seconds, rate], ...] as the load.http fault takes them."""
        return [[i * self.step, rate] for i, rate in enumerate(self.rates())]


class Experiment(Frozen):
    api_version: Literal["chaosrunner/v1"] = Field(alias="apiVersion")
    kind: Literal["Experiment"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str | None = None
    description: str | None = None
    hypothesis: str = Field(min_length=1)
    environment: str = "staging"
    tags: tuple[str, ...] = ()
    steady_state: SteadyStateRef
    duration: Duration
    blast_radius: BlastRadius = Field(default_factory=BlastRadius)
    faults: tuple[Fault, ...] = Field(min_length=1)
    success_criteria: tuple[Criterion, ...] = ()
    abort: AbortSpec = Field(default_factory=AbortSpec)
    rollback: Literal["always"] = "always"
    notify: tuple[NotifyTarget, ...] = ()
    annotations: AnnotationsSpec | None = None
    search: SearchSpec | None = None

    @model_validator(mode="after")
    def _search_fault(self) -> Experiment:
        if self.search is None:
            return self
        if not self.abort.budget_limits:
            raise PlacedError(("search",), "needs abort.error_budget: the error-budget "
                              "guard's abort is what marks the breaking point")
        fault = self.search_fault()
        if fault is None:
            raise PlacedError(("search",), "names no load.http fault; add one and name it "
                              "in search.fault")
        if {"rate", "users"} & set(fault.with_):
            raise PlacedError(("faults", self.faults.index(fault), "with"),
                              f"fault {fault.name!r} is stepped by search:; drop its rate/users")
        needed = len(self.search.rates()) * self.search.step
        if self.duration + 1e-9 < fault.at + needed:
            raise PlacedError(("search",), f"duration is too short for the search: "
                              f"{len(self.search.rates())} steps of {self.search.step:g}s from "
                              f"{fault.at:g}s need duration: {fault.at + needed:g}s")
        return self

    def search_fault(self) -> Fault | None:
        """The load.http fault a search steps up."""
        if self.search is None:
            return None
        loads = [f for f in self.faults if f.action == "load.http"]
        if self.search.fault is not None:
            return next((f for f in loads if f.name == self.search.fault), None)
        return loads[0] if len(loads) == 1 else None

    def fault_params(self, fault: Fault) -> dict[str, Any]:
        """A fault's `with:`, and for the searched load its steps."""
        if self.search is not None and fault is self.search_fault():
            return {**fault.with_, "steps": self.search.steps()}
        return dict(fault.with_)

    @model_validator(mode="after")
    def _unique_fault_names(self) -> Experiment:
        names = [fault.name for fault in self.faults]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PlacedError(("faults",), "fault names must be unique; repeated: "
                              f"{', '.join(duplicates)}")
        return self


class GameDay(Frozen):
    api_version: Literal["chaosrunner/v1"] = Field(alias="apiVersion")
    kind: Literal["GameDay"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    schedule: str | None = None
    experiments: tuple[str, ...] = Field(min_length=1)
    stop_on: Literal["failure", "abort", "never"] = "failure"
    min_budget_remaining: Ratio | None = None
    notify: tuple[NotifyTarget, ...] = ()
    annotations: AnnotationsSpec | None = None

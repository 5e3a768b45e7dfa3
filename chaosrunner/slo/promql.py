"""What an SLI written as one PromQL string is, and how to read it over another window.

An SLI string is usually a ratio of sums of rates (the seed's own form):

    sum(rate(http_requests_total{code!~"5.."}[5m])) / sum(rate(http_requests_total[5m]))

Its value over a window W is the same expression with every range selector set to W
(`[5m]` -> `[1h]`), as Sloth builds its `slo:sli_error:ratio_rate<W>` rules: a ratio of
rates over W, which is the event ratio over W. `shape()` says whether a string has that
form; `at_window()` does the rewrite. Strings of any other form are averaged with a
subquery by the Prometheus source (see its module docstring), which `shape()` reports and
`budget_method()` spells for `validate` and `budget` (here, not in the source: `validate`
must not load the HTTP client).

Parsing is done by `promql-parser` (the Rust PromQL parser, Prometheus 2.45 grammar), never
with regular expressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import promql_parser as pp

from chaosrunner.spec.models import SLO

# Functions whose value over a range, summed, divides into an event ratio.
COUNTER_FUNCTIONS = ("rate", "increase")
ARITHMETIC = ("+", "-")
# The averaging subquery of a string that cannot be re-windowed (`subquery_step`).
SUBQUERY_POINTS = 4320
MIN_SUBQUERY_STEP = 10.0


@dataclass(frozen=True)
class SLIShape:
    """What `shape()` found in an SLI string."""

    rewritable: bool             # a ratio of sums of rate()/increase(): exact over any window
    reason: str | None           # why it is not rewritable
    inner_range: float | None    # the longest range selector in seconds (None: there is none)
    selectors: tuple[str, ...]   # every series selector, as PromQL


class PromQLSyntaxError(ValueError):
    """The string is not PromQL."""


def parse(query: str) -> pp.Expr:
    try:
        return pp.parse(query)
    except ValueError as exc:
        raise PromQLSyntaxError(f"not valid PromQL ({exc}): {query}") from None


def shape(query: str) -> SLIShape:
    """Classify an SLI string (PromQLSyntaxError when it does not parse).

    >>> shape('sum(rate(x{code="500"}[5m])) / sum(rate(x[5m]))').rewritable
    True
    >>> shape('max(rate(x[5m])) / sum(rate(x[5m]))').reason
    'max(...) is not a sum(...) of rate() or increase()'
    """
    expr = parse(query)
    ranges: list[float] = []
    selectors: list[str] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.MatrixSelector | pp.SubqueryExpr) and node.range is not None:
            ranges.append(node.range.total_seconds())
        if isinstance(node, pp.VectorSelector) and str(node) not in selectors:
            selectors.append(str(node))

    pp.walk(expr, pre_visit=visit)
    reason = _ratio_problem(expr)
    return SLIShape(reason is None, reason, max(ranges) if ranges else None, tuple(selectors))


def at_window(query: str, seconds: float) -> str:
    """The SLI string with every range selector set to `seconds`.

    >>> at_window('sum(rate(x[5m])) / sum(rate(x[5m] offset 1m))', 3600)
    'sum(rate(x{}[1h])) / sum(rate(x{}[1h] offset 1m))'
    """
    window = pp.display_duration(timedelta(seconds=seconds))

    def rewrite(node: pp.Expr) -> pp.Expr | None:
        if not isinstance(node, pp.MatrixSelector):
            return None
        text = str(node)
        # Label values come before the range and may hold "[...]": cut at the last one.
        head, _, tail = text.rpartition(f"[{pp.display_duration(node.range)}]")
        return pp.parse(f"{head}[{window}]{tail}")

    return str(pp.transform(parse(query), post_visit=rewrite))


def sli_shape(query: str) -> SLIShape | None:
    """`promql.shape()` of an SLI string; None when promql-parser cannot read it."""
    try:
        return shape(query)
    except PromQLSyntaxError:
        return None


def subquery_step(seconds: float, found: SLIShape | None) -> float:
    """Step of the averaging subquery: the SLI's own range, so the steps tile the window
    without gaps; window/4320 (at least 10s) when the SLI has no range selector."""
    if found is not None and found.inner_range:
        return min(found.inner_range, seconds)
    return max(MIN_SUBQUERY_STEP, round(seconds / SUBQUERY_POINTS))


def budget_method(slo: SLO) -> str | None:
    """Why the window figures of a promql/prometheus SLI are approximations, or None.

    `validate` prints it: the string is not a ratio of sums of rates, so its burn rates
    and remaining budget average it over a subquery instead of re-windowing it.
    """
    sli = slo.sli
    query = sli.prometheus.query if sli.prometheus is not None else sli.promql
    if query is None or slo.budget is None:
        return None
    try:
        found = shape(query)
    except PromQLSyntaxError as exc:
        return (f"promql-parser cannot read the SLI string ({exc}); budget figures average "
                "it over a subquery and their coverage is unknown")
    if slo.is_ratio and found.rewritable:
        return None
    step = promql_duration(subquery_step(slo.window, found))
    if not slo.is_ratio:
        return (f"a threshold SLO: its budget is the share of {step} steps that meet the "
                "target, every step weighing alike whatever its traffic; see docs/budget.md")
    return (f"its PromQL string cannot be re-windowed ({found.reason}); burn rates and "
            f"remaining budget average it over a subquery with a {step} step, which weighs "
            "every step alike (not every event); see docs/budget.md")


def promql_duration(seconds: float) -> str:
    """A PromQL duration for `seconds`, in the largest unit that divides it exactly.

    >>> promql_duration(2592000), promql_duration(90), promql_duration(0.25)
    ('30d', '90s', '250ms')
    """
    millis = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis >= size and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{max(millis, 1)}ms"


# --- the ratio-of-sums shape -------------------------------------------------------------------


def _ratio_problem(expr: pp.Expr) -> str | None:
    """None when `expr` is `A / B` or `1 - A / B` with A, B sums of rates; else why not."""
    expr = _unwrap(expr)
    if isinstance(expr, pp.BinaryExpr) and str(expr.op) == "-" and _is_one(expr.lhs):
        expr = _unwrap(expr.rhs)
    if not (isinstance(expr, pp.BinaryExpr) and str(expr.op) == "/"):
        return "it is not a ratio (A / B or 1 - A / B)"
    return _sum_problem(expr.lhs) or _sum_problem(expr.rhs)


def _sum_problem(expr: pp.Expr) -> str | None:
    """None when `expr` is sum(...) of rates, or such sums added or subtracted."""
    expr = _unwrap(expr)
    if isinstance(expr, pp.BinaryExpr) and str(expr.op) in ARITHMETIC:
        return _sum_problem(expr.lhs) or _sum_problem(expr.rhs)
    if not (isinstance(expr, pp.AggregateExpr) and str(expr.op) == "sum"):
        return f"{_describe(expr)} is not a sum(...) of rate() or increase()"
    return _rate_problem(expr.expr)


def _rate_problem(expr: pp.Expr) -> str | None:
    expr = _unwrap(expr)
    if isinstance(expr, pp.BinaryExpr) and str(expr.op) in ARITHMETIC:
        return _rate_problem(expr.lhs) or _rate_problem(expr.rhs)
    if not isinstance(expr, pp.Call) or expr.func.name not in COUNTER_FUNCTIONS:
        return f"{_describe(expr)} is not rate() or increase()"
    if not (len(expr.args) == 1 and isinstance(expr.args[0], pp.MatrixSelector)):
        return f"{expr.func.name}() over a subquery cannot be re-windowed"
    return None


def _unwrap(expr: pp.Expr) -> pp.Expr:
    while isinstance(expr, pp.ParenExpr):
        expr = expr.expr
    return expr


def _is_one(expr: pp.Expr) -> bool:
    expr = _unwrap(expr)
    return isinstance(expr, pp.NumberLiteral) and expr.val == 1.0


def _describe(expr: pp.Expr) -> str:
    if isinstance(expr, pp.Call):
        return f"{expr.func.name}()"
    if isinstance(expr, pp.AggregateExpr):
        return f"{expr.op}(...)"
    return str(expr)

"""`chaosrunner budget STEADYSTATE`: the error budget of each SLO, and what the policy says.

One row per SLO: the SLI now (over the last minute), its target, the SLI and the budget
remaining over the SLO window, burn rates over 5m/30m/1h/6h/3d, the decision of the
error budget policy (the seed's bands, thresholds from the file's `error_budget_policy`)
and the multi-window alert state (SRE Workbook: page / ticket / none).

Only Prometheus SLIs (PromQL string, `prometheus`, `ratio`, `sloth`) have a window view;
probe and command SLIs are listed with an unknown budget. Exit code 0 when every
Prometheus SLI could be read, 1 when one could not (its row says why).

Every figure says how much of its window Prometheus holds (`held`, `coverage`): a remaining
budget over 4 days of a 30-day window is the budget left *over those 4 days*, marked
partial. `--at TIME` gives the figures as they were at TIME; `--var K=V` fills `${K}` in the
file, as in every other command. The math is `slo.budget`'s, the same as the run's guard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from chaosrunner.errors import ChaosRunnerError, InvalidInput
from chaosrunner.slo.budget import BURN_WINDOWS, WindowBurn, alert_state, policy_decision
from chaosrunner.slo.promql import budget_method
from chaosrunner.slo.sources.base import BudgetStatus, SourceContext
from chaosrunner.slo.sources.prometheus import PROMETHEUS_KINDS, PrometheusSource
from chaosrunner.spec.loader import parse_vars
from chaosrunner.spec.models import SLO, SteadyState
from chaosrunner.spec.units import format_duration
from chaosrunner.spec.validate import load_steady_state

CURRENT_LOOKBACK = 60.0


@dataclass
class BudgetRow:
    """What `chaosrunner budget` reports for one SLO (also its JSON shape)."""

    slo: str
    kind: str
    target: float
    op: str
    window: str
    ratio: bool
    sli: float | None = None
    sli_window: float | None = None
    budget_remaining: float | None = None
    # Seconds of the SLO window Prometheus holds, its share, and whether that is not all.
    window_held: float | None = None
    window_coverage: float | None = None
    partial: bool = False
    coverage: str | None = None  # "over 4 d of the 30 d window"
    burn_rates: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(BURN_WINDOWS))
    burn_coverage: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(BURN_WINDOWS))
    policy: str = "unknown"
    policy_text: str = ""
    alert: str = "unknown"
    alerting: str = "workbook"
    note: str | None = None
    error: str | None = None


def command(args: argparse.Namespace) -> int:
    """Print the budget table (or JSON) of a SteadyState file."""
    steady = load_steady_state(args.file, parse_vars(getattr(args, "var", None) or []))
    override = getattr(args, "prometheus", None)
    if override:
        steady = steady.model_copy(update={"prometheus": override})
    at = parse_at(getattr(args, "at", None))
    rows = asyncio.run(collect(steady, SourceContext(at=at)))
    if args.output == "json":
        print(json.dumps(as_json(steady, rows), indent=2, allow_nan=False))
    else:
        print_table(steady, rows)
    return 1 if any(row.error for row in rows) else 0


def parse_at(text: str | None) -> float | None:
    """`--at`: Unix seconds or an RFC 3339 time (with a zone); InvalidInput otherwise."""
    from datetime import datetime

    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(f"--at {text!r}: expected Unix seconds or an RFC 3339 time with a "
                           "zone, e.g. 2026-11-29T18:00:00Z")
    return moment.timestamp()


async def collect(steady: SteadyState, context: SourceContext) -> list[BudgetRow]:
    """One row per SLO, all SLOs queried concurrently."""
    return list(await asyncio.gather(*(
        budget_row(name, slo, steady, context)
        for name, slo in steady.service_level_objectives.items())))


async def budget_row(name: str, slo: SLO, steady: SteadyState,
                     context: SourceContext) -> BudgetRow:
    row = BudgetRow(slo=name, kind=slo.sli.kind, target=slo.target, op=slo.op,
                    window=format_duration(slo.window), ratio=slo.is_ratio,
                    alerting=slo.alerting)
    if slo.sli.kind not in PROMETHEUS_KINDS:
        row.note = f"{slo.sli.kind} SLIs have no window view: budget unknown"
        return _decide(row, slo, steady, None)
    try:
        source = PrometheusSource(name, slo, steady, context)
        try:
            await source.start()
            reading, status = await asyncio.gather(source.read(CURRENT_LOOKBACK),
                                                   source.budget_status())
        finally:
            await source.close()
    except ChaosRunnerError as exc:
        row.error = str(exc)
        return _decide(row, slo, steady, None)
    row.sli, row.note = reading.value, reading.note
    if slo.budget is None:
        row.note = "threshold SLO without `objective:`: no error budget"
    method = budget_method(slo)
    if method is not None:
        row.note = f"{row.note}; {method}" if row.note else method
    return _decide(row, slo, steady, status)


def _decide(row: BudgetRow, slo: SLO, steady: SteadyState,
            status: BudgetStatus | None) -> BudgetRow:
    if status is not None:
        row.sli_window = status.sli
        row.budget_remaining = status.remaining
        row.burn_rates = {name: status.burn_rates.get(name) for name in BURN_WINDOWS}
        row.burn_coverage = {name: _coverage(status.windows.get(name))
                             for name in BURN_WINDOWS}
        if status.period is not None:
            row.window_held = status.period.held
            row.window_coverage = status.period.coverage
            row.partial = status.period.partial
            row.coverage = status.period.coverage_text() or None
    decision = policy_decision(row.budget_remaining, steady.error_budget_policy)
    row.policy, row.policy_text = decision.value, decision.text
    row.alert = alert_state(row.burn_rates, slo.window, slo.alerting).value
    return row


def _coverage(figure: WindowBurn | None) -> float | None:
    return None if figure is None else figure.coverage


def coverage_note(row: BudgetRow) -> str | None:
    """'remaining budget over 4 d of the 30 d window (partial)' and the like."""
    if row.coverage is None or row.budget_remaining is None:
        return None
    text = f"remaining budget {row.coverage}"
    partial = [name for name, share in row.burn_coverage.items()
               if share is not None and share < 1.0]
    if partial:
        text += f"; burn rates over {', '.join(partial)} cover part of their window (*)"
    return text + (" (partial)" if row.partial else "")



def as_json(steady: SteadyState, rows: list[BudgetRow]) -> dict[str, Any]:
    """The `--output json` document; infinities become null (JSON has none)."""
    return {"steady_state": steady.name,
            "slos": [_finite(asdict(row)) for row in rows]}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


# --- human output -------------------------------------------------------------------------


def print_table(steady: SteadyState, rows: list[BudgetRow]) -> None:
    # rich is imported here: the other commands should not pay for it.
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Error budget: {steady.name} (burn rates: x sustainable)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("SLO", "SLI now", "target", "window", "SLI window", "budget left",
                   *BURN_WINDOWS, "policy", "alert"):
        table.add_column(header, justify="left" if header in ("SLO", "policy") else "right",
                         no_wrap=header != "policy")
    for row in rows:
        table.add_row(row.slo, _sli(row.sli, row.ratio), _target(row), row.window,
                      _sli(row.sli_window, True), _remaining(row),
                      *(_burn(row.burn_rates.get(name), row.burn_coverage.get(name))
                        for name in BURN_WINDOWS),
                      row.policy.replace("_", " "), _alert(row.alert))
    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 150)  # pipes and logs: no reason to squeeze
    console.print(table)
    for row in rows:
        if row.error:  # errors already name the SLO
            console.print(Text(row.error, style="red"))
            continue
        for line in (coverage_note(row), row.note):
            if line:
                console.print(Text(f"{row.slo}: {line}"))


def _sli(value: float | None, ratio: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.3%}" if ratio else f"{value:.4g}"


def _target(row: BudgetRow) -> str:
    if row.ratio and row.op == ">=":
        return f"{row.target * 100:g}%"
    return f"{row.op} {row.target:g}"


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1%}"


def _remaining(row: BudgetRow) -> str:
    text = _percent(row.budget_remaining)
    return f"{text} partial" if row.partial and row.budget_remaining is not None else text


def _burn(value: float | None, coverage: float | None = None) -> str:
    if value is None:
        return "-"
    text = "inf" if math.isinf(value) else f"{value:.2f}"
    return f"{text}*" if coverage is not None and coverage < 1.0 else text


def _alert(state: str) -> str:
    colour = {"page": "bold red", "ticket": "yellow"}.get(state)
    return f"[{colour}]{state}[/{colour}]" if colour else state

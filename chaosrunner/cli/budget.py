"""`chaosrunner budget STEADYSTATE`: the error budget of each SLO, and what the policy says.

One row per SLO: the SLI now (over the last minute), its target, the SLI and the budget
remaining over the SLO window, burn rates over 5m/30m/1h/6h/3d, the decision of the
error budget policy (the seed's bands, thresholds from the file's `error_budget_policy`)
and the multi-window alert state (SRE Workbook: page / ticket / none).

Only Prometheus SLIs (PromQL string, `prometheus`, `ratio`, `sloth`) have a window view;
probe and command SLIs are listed with an unknown budget. Exit code 0 when every
Prometheus SLI could be read, 1 when one could not (its row says why).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from chaosrunner.errors import ChaosRunnerError
from chaosrunner.slo.budget import BURN_WINDOWS, alert_state, policy_decision
from chaosrunner.slo.sources.base import BudgetStatus, SourceContext
from chaosrunner.slo.sources.prometheus import PROMETHEUS_KINDS, PrometheusSource
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
    burn_rates: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(BURN_WINDOWS))
    policy: str = "unknown"
    policy_text: str = ""
    alert: str = "unknown"
    note: str | None = None
    error: str | None = None


def command(args: argparse.Namespace) -> int:
    """Print the budget table (or JSON) of a SteadyState file."""
    from chaosrunner.spec.loader import parse_vars

    steady = load_steady_state(args.file, parse_vars(getattr(args, "var", None) or []))
    override = getattr(args, "prometheus", None)
    if override:
        steady = steady.model_copy(update={"prometheus": override})
    rows = asyncio.run(collect(steady, SourceContext()))
    if args.output == "json":
        print(json.dumps(as_json(steady, rows), indent=2, allow_nan=False))
    else:
        print_table(steady, rows)
    return 1 if any(row.error for row in rows) else 0


async def collect(steady: SteadyState, context: SourceContext) -> list[BudgetRow]:
    """One row per SLO, all SLOs queried concurrently."""
    return list(await asyncio.gather(*(
        budget_row(name, slo, steady, context)
        for name, slo in steady.service_level_objectives.items())))


async def budget_row(name: str, slo: SLO, steady: SteadyState,
                     context: SourceContext) -> BudgetRow:
    row = BudgetRow(slo=name, kind=slo.sli.kind, target=slo.target, op=slo.op,
                    window=format_duration(slo.window), ratio=slo.is_ratio)
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
    return _decide(row, slo, steady, status)


def _decide(row: BudgetRow, slo: SLO, steady: SteadyState,
            status: BudgetStatus | None) -> BudgetRow:
    if status is not None:
        row.sli_window = status.sli
        row.budget_remaining = status.remaining
        row.burn_rates = {name: status.burn_rates.get(name) for name in BURN_WINDOWS}
    decision = policy_decision(row.budget_remaining, steady.error_budget_policy)
    row.policy, row.policy_text = decision.value, decision.text
    row.alert = alert_state(row.burn_rates, slo.window).value
    return row


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
                      _sli(row.sli_window, True), _percent(row.budget_remaining),
                      *(_burn(row.burn_rates.get(name)) for name in BURN_WINDOWS),
                      row.policy.replace("_", " "), _alert(row.alert))
    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 150)  # pipes and logs: no reason to squeeze
    console.print(table)
    for row in rows:
        if row.error:  # errors already name the SLO
            console.print(Text(row.error, style="red"))
        elif row.note:
            console.print(Text(f"{row.slo}: {row.note}"))


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


def _burn(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _alert(state: str) -> str:
    colour = {"page": "bold red", "ticket": "yellow"}.get(state)
    return f"[{colour}]{state}[/{colour}]" if colour else state

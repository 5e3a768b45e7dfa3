"""`chaosrunner capacity STEADY_STATE --usage QUERY`: the capacity planner.

    chaosrunner capacity steady-states/shop.yaml \\
        --usage 'sum(rate(http_requests_total{job="checkout"}[5m]))' \\
        --growth 10%/month --months 6 --headroom 30% [--breaking-point 450/s | REPORT]

The STEADY_STATE file gives the Prometheus server (`prometheus:`, its credentials), or
`--prometheus URL`. Without --growth the trend over `--window` (default 30d) is used.
The breaking point is `--breaking-point` (a rate, or a report.json / report directory
of a search experiment), else the newest search run in the history that found one.
Output: text, `--output json`, and with `--report-dir D` capacity.html (the chart) and
capacity.json. Exit code 0; 4 on bad input; 1 when Prometheus cannot answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaosrunner.errors import InvalidInput, SourceError
from chaosrunner.history import query_runs
from chaosrunner.load.capacity import (
    CapacityPlan,
    parse_growth,
    plan_capacity,
    prometheus_for,
)
from chaosrunner.load.capacity_report import render_capacity_html
from chaosrunner.spec.loader import parse_vars
from chaosrunner.spec.units import parse_duration, parse_rate, parse_ratio
from chaosrunner.spec.validate import load_steady_state


def command(args: argparse.Namespace) -> int:
    steady = load_steady_state(args.file, parse_vars(getattr(args, "var", None) or []))
    growth = parse_growth(args.growth) if args.growth else None
    headroom = _headroom(args.headroom)
    window = _window(args.window)
    if args.months < 1 or args.months > 120:
        raise InvalidInput(f"--months {args.months}: give 1 to 120 months")
    breaking, source = breaking_point(args.breaking_point, Path(args.state_dir))
    prometheus = prometheus_for(steady, args.prometheus)
    try:
        current = prometheus.instant(args.usage)
        trend = prometheus.trend(args.usage, window) if growth is None else None
    except SourceError as exc:
        print(f"chaosrunner: {exc}", file=sys.stderr)
        if args.output == "json":
            # Imported here: cli.main imports every command module lazily.
            from chaosrunner.cli.main import print_json_error

            print_json_error(str(exc), 1)
        return 1
    finally:
        prometheus.close()
    plan = plan_capacity(args.usage, current, args.months, headroom, growth, trend, breaking,
                         source)
    if args.report_dir:
        _write_reports(plan, Path(args.report_dir))
    print(json.dumps(plan.to_json(), indent=2) if args.output == "json" else human(plan))
    return 0


def _headroom(text: str) -> float:
    try:
        value = parse_ratio(text)
    except ValueError as exc:
        raise InvalidInput(f"--headroom {text!r}: {exc}") from None
    if value >= 1:
        raise InvalidInput(f"--headroom {text!r}: must be below 100%")
    return value


def _window(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"--window {text!r}: {exc}") from None


def breaking_point(given: str | None, state_dir: Path) -> tuple[float | None, str | None]:
    """(rate, where it came from) from --breaking-point, else the newest search run."""
    if given is not None:
        path = Path(given)
        if path.exists():
            return _from_report(path / "report.json" if path.is_dir() else path, strict=True)
        try:
            return parse_rate(given), "--breaking-point"
        except ValueError:
            raise InvalidInput(f"--breaking-point {given!r}: give a rate such as 450/s, or "
                               "the report.json (or report directory) of a search run"
                               ) from None

    for row in sorted(query_runs(state_dir), key=lambda r: r.started_at, reverse=True):
        if row.report_dir:
            found = _from_report(Path(row.report_dir) / "report.json", strict=False)
            if found[0] is not None:
                return found
    return None, None


def _from_report(path: Path, strict: bool) -> tuple[float | None, str | None]:
    try:
        search = json.loads(path.read_text()).get("search") or {}
    except (OSError, ValueError, AttributeError) as exc:
        if strict:
            raise InvalidInput(f"--breaking-point {path}: not a readable report.json ({exc})"
                               ) from None
        return None, None
    # The delivered rate is the traffic the system really met (a saturated step
    # delivers less than it asked).
    rate = (search.get("broke_delivered") or search.get("broke")
            or search.get("held_delivered") or search.get("held"))
    if rate is None and strict:
        raise InvalidInput(f"--breaking-point {path}: that run found no breaking point (no "
                           "search:, or the load never started)")
    which = "broke" if search.get("broke") else "held up to (ceiling reached)"
    return (float(rate), f"{path} ({which})") if rate is not None else (None, None)


def _write_reports(plan: CapacityPlan, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "capacity.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    (directory / "capacity.html").write_text(render_capacity_html(plan))


def human(plan: CapacityPlan) -> str:
    lines = [f"usage now        {plan.current:g}   ({plan.usage_query})",
             f"growth           {plan.growth_per_month:+.1%}/month ({plan.model}"
             + (f", trend over {plan.trend.window_seconds:g}s, {plan.trend.points} points)"
                if plan.trend else ")"),
             "forecast         " + "  ".join(f"m{m}:{v:.4g}" for m, v in
                                             enumerate(plan.forecast))]
    if plan.breaking_point is not None:
        lines += [f"breaking point   {plan.breaking_point:g}   ({plan.breaking_point_source})",
                  f"limit            {plan.limit:g}   (breaking point minus "
                  f"{plan.headroom:.0%} headroom)",
                  "months to limit  " + ("never (usage does not grow)"
                                         if plan.months_to_limit is None
                                         else f"{plan.months_to_limit:g}")]
    lines += [f"needed at m{plan.months}    {plan.required_capacity:g}   (forecast / "
              f"{1 - plan.headroom:.0%} utilisation)", "", plan.recommendation]
    return "\n".join(lines)

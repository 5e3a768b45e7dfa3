"""`chaosrunner runs [--since 7d|2026-11-01] [--experiment NAME] [--output json]`: the history."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaosrunner.errors import InvalidInput, Verdict
from chaosrunner.history import query_runs
from chaosrunner.report import facts
from chaosrunner.spec.units import parse_duration

VERDICT_STYLES = {Verdict.PASSED: "green", Verdict.FAILED: "red",
                  Verdict.ABORTED: "dark_orange", Verdict.ROLLBACK_INCOMPLETE: "bold red",
                  Verdict.NOT_STARTED: "dim", Verdict.INTERRUPTED: "yellow"}


def command(args: argparse.Namespace) -> int:
    """Print the recorded runs, newest first."""
    since = parse_since(args.since) if args.since else None
    rows = query_runs(Path(args.state_dir), since=since, experiment=args.experiment,
                      gameday=args.gameday, limit=args.limit)
    if args.output == "json":
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    if not rows:
        print(f"no runs recorded in {Path(args.state_dir)}"
              + (" matching the filters" if since or args.experiment or args.gameday else ""))
        return 0
    print_table(rows)
    return 0


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'7d' / '12h' (that long ago) or '2026-11-01' / '2026-11-01T10:00' (UTC unless given)."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--since {text!r}: expected a duration such as 7d or 12h, or a "
                           "date such as 2026-11-01 (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def print_table(rows: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="chaosrunner runs (newest first)", title_justify="left")
    for column in ("Started (UTC)", "Experiment", "Verdict", "Exit", "Duration",
                   "Budget used", "Abort / reason", "Game day", "Report"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = VERDICT_STYLES.get(row.verdict, "")
        verdict = f"[{style}]{row.verdict}[/]" if style else row.verdict
        table.add_row(facts.stamp(row.started_at).removesuffix(" UTC"), _plain(row.experiment),
                      verdict, str(row.exit_code), facts.human_duration(row.duration_seconds),
                      facts.percent(row.budget_consumed) if row.budget_consumed is not None
                      else "—", _plain(row.abort_reason or row.reason or ""),
                      _plain(row.gameday or ""), _plain(row.report_dir or ""))
    Console(width=_width()).print(table)


def _plain(text: str) -> Any:
    from rich.text import Text

    return Text(text)  # user strings are never read as rich markup


def _width() -> int | None:
    import shutil
    import sys

    # On a terminal rich measures it; in a pipe or CI log, wide rows beat folded ones.
    return None if sys.stdout.isatty() else max(160, shutil.get_terminal_size().columns)

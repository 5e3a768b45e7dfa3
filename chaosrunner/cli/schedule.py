"""`chaosrunner schedule FILE... [--once]`: start game days on their cron schedules.

What "due" means, the lock, and how SIGTERM is handled: `chaosrunner.gameday.schedule`.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

from chaosrunner.errors import InvalidInput
from chaosrunner.gameday.schedule import Scheduler, load_entries
from chaosrunner.spec.loader import parse_vars
from chaosrunner.spec.units import parse_duration


def command(args: argparse.Namespace) -> int:
    """Run as a long-lived scheduler, or with --once start what is due now and exit."""
    variables = parse_vars(args.var)
    entries = load_entries([Path(f) for f in args.files], variables)
    scheduler = Scheduler(entries=entries, state_dir=Path(args.state_dir),
                          report_root=Path(args.report_dir or "reports"),
                          grace=parse_grace(args.grace), child_flags=child_flags(args))
    scheduler.install_signals()
    if not args.once:
        return scheduler.run_forever()
    code, outcomes = scheduler.run_once()
    if args.output == "json":
        print(json.dumps({"exit_code": code, "runs": [o.to_json() for o in outcomes]},
                         indent=2))
    return code


def parse_grace(text: str) -> timedelta:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"--grace {text!r}: {exc}") from None
    return timedelta(seconds=seconds)


def child_flags(args: argparse.Namespace) -> list[str]:
    """The flags every `chaosrunner gameday` child gets from the scheduler's command line."""
    flags = [flag for flag, on in (("--allow-production", args.allow_production),
                                   ("--allow-exec", args.allow_exec),
                                   ("--no-watchdog", getattr(args, "no_watchdog", False)))
             if on]
    for pair in args.var:
        flags += ["--var", pair]
    # Each game day sends its own notifications, annotations and trace, and pushes its
    # metrics; the scheduler serves --metrics-port itself.
    for flag, value in (("--config", getattr(args, "config", None)),
                        ("--otlp-endpoint", getattr(args, "otlp_endpoint", None)),
                        ("--pushgateway", getattr(args, "pushgateway", None))):
        if value:
            flags += [flag, value]
    if getattr(args, "halt_source", None):
        flags += ["--halt-source", args.halt_source]
    return flags

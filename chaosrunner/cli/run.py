"""`chaosrunner run FILE` and `chaosrunner plan FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path

from chaosrunner.app.run import run_file
from chaosrunner.cli.progress import progress_listener
from chaosrunner.engine.context import RunOptions
from chaosrunner.observe.settings import settings_from_args
from chaosrunner.spec.loader import parse_vars


def options_from(args: argparse.Namespace, dry_run: bool = False) -> RunOptions:
    return RunOptions(
        state_dir=Path(args.state_dir),
        report_dir=Path(args.report_dir) if getattr(args, "report_dir", None) else None,
        junit=Path(args.junit) if getattr(args, "junit", None) else None,
        allow_production=args.allow_production, allow_exec=args.allow_exec,
        dry_run=dry_run or getattr(args, "dry_run", False), variables=parse_vars(args.var),
        watchdog=not getattr(args, "no_watchdog", False),
        observe=None if dry_run else settings_from_args(args),
        halt_source=getattr(args, "halt_source", None))


def command_run(args: argparse.Namespace) -> int:
    """Run one experiment (native or Chaos Toolkit) and write its reports."""
    options = options_from(args)
    report = run_file(Path(args.file), options, output=args.output,
                      backends=args.backends, display=progress_listener)
    return report.exit_code


def command_plan(args: argparse.Namespace) -> int:
    options = options_from(args, dry_run=True)
    report = run_file(Path(args.file), options, output=args.output,
                      backends=args.backends, display=progress_listener)
    return report.exit_code  # a refusal is 3, as with `run --dry-run`

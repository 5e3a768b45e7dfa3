"""`chaosrunner gameday FILE`: run a game day's experiments in order (DESIGN.md 2.3).

The rules (budget gate, stop_on, overall verdict) are in `chaosrunner.gameday.run`.
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

from chaosrunner.app.load import load_gameday
from chaosrunner.app.run import run_file
from chaosrunner.cli.progress import progress_listener
from chaosrunner.cli.run import options_from
from chaosrunner.engine.signals import SIGNALS
from chaosrunner.gameday.lock import gameday_lock
from chaosrunner.gameday.run import TRIGGER_ENV, default_report_dir, print_summary, run_gameday


def command(args: argparse.Namespace) -> int:
    """Run the game day in FILE; exit with its overall exit code."""
    SIGNALS.arm()  # a signal ends the day in 130/143, never in death by the signal
    options = options_from(args)
    loaded = load_gameday(Path(args.file), options.variables)
    name = loaded.gameday.name
    report_dir = Path(args.report_dir) if args.report_dir else default_report_dir(name)
    trigger = "schedule" if os.environ.get(TRIGGER_ENV) == "schedule" else "cli"
    with gameday_lock(options.state_dir, name):
        report = run_gameday(loaded, options, report_dir, output=args.output, trigger=trigger,
                             run_experiment=partial(run_file, display=progress_listener))
    print_summary(report, args.output)
    return report.exit_code

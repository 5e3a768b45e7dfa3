"""`make reliability`:
SIGINT, double SIGINT and SIGTERM at random moments: exact exit status, nothing left behind.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import signals
from campaign import check, runs_per_check


def test_signals() -> None:
    check(signals.campaign, runs_per_check())

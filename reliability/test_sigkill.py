"""`make reliability`:
SIGKILL at a random moment, then recover: process.pause, a toxic, docker.pause.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sigkill
from campaign import check, runs_per_check


def test_sigkill() -> None:
    check(sigkill.campaign, runs_per_check())

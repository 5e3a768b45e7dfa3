"""`make reliability`:
The CronJob pattern in containers: PID 1 SIGKILLed, recover in the next container.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cronjob
from campaign import runs_per_check


def test_cronjob() -> None:
    lines: list[str] = []
    ok = cronjob.campaign(max(1, runs_per_check() // 5), out=lines.append)
    print("\n" + "\n".join(lines))
    assert ok, "\n".join(lines)

"""`make reliability`:
The CronJob pattern in containers: PID 1 SIGKILLed, recover in the next container.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cronjob
from campaign import check, docker_available
from services import need


def test_cronjob() -> None:
    missing = docker_available()
    need("docker", missing is None, missing or "")
    check(cronjob.campaign, cronjob.runs())

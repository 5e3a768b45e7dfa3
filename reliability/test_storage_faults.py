"""`make reliability`: Storage faults on a small tmpfs: the verdict's exit status, or 4 at start.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import storage_faults
from campaign import runs_per_check


def test_storage_faults() -> None:
    lines: list[str] = []
    ok = storage_faults.campaign(runs_per_check(), out=lines.append)
    print("\n" + "\n".join(lines))
    assert ok, "\n".join(lines)

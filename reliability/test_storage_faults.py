"""`make reliability`: Storage faults on a small tmpfs: the verdict's exit status, or 4 at start.
Sizes: CHAOSRUNNER_RELIABILITY_RUNS (runs per check; default 50)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import storage_faults
from campaign import check, runs_per_check
from services import need
from storage import mount_refused


def test_storage_faults() -> None:
    refused = mount_refused()
    need("mount", refused is None, f"mounting a tmpfs is not permitted: {refused}")
    check(storage_faults.campaign, runs_per_check())

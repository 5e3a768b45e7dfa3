"""`make reliability`: 2,000 generated hostile files through validate in-process and 50
through the CLI (sizes from CHAOSRUNNER_HOSTILE_FILES / CHAOSRUNNER_HOSTILE_CLI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_files


def test_generated_hostile_files_end_in_exit_4_at_file_line() -> None:
    count = int(os.environ.get("CHAOSRUNNER_HOSTILE_FILES", "2000"))
    sample = int(os.environ.get("CHAOSRUNNER_HOSTILE_CLI", "50"))
    lines: list[str] = []
    ok = hostile_files.report(count, sample, out=lines.append)
    print("\n".join(lines))
    assert ok, "\n".join(lines)

"""`make reliability`: 2,000 generated hostile files through validate in-process and 50
through the CLI (sizes from CHAOSRUNNER_HOSTILE_FILES / CHAOSRUNNER_HOSTILE_CLI)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType


def load_campaign() -> ModuleType:
    path = Path(__file__).with_name("hostile_files.py")
    spec = importlib.util.spec_from_file_location("hostile_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_generated_hostile_files_end_in_exit_4_at_file_line() -> None:
    campaign = load_campaign()
    count = int(os.environ.get("CHAOSRUNNER_HOSTILE_FILES", "2000"))
    sample = int(os.environ.get("CHAOSRUNNER_HOSTILE_CLI", "50"))
    lines: list[str] = []
    ok = campaign.report(count, sample, out=lines.append)
    print("\n".join(lines))
    assert ok, "\n".join(lines)

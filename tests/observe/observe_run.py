"""What a run through the command line left behind (see conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    report_dir: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.report_dir / "report.json").read_text())
        return data

    def everything_written(self) -> str:
        """Every byte the run printed or wrote, to look for secrets in."""
        files = "".join(p.read_text(errors="replace") for p in self.report_dir.rglob("*")
                        if p.is_file())
        return self.out + self.err + files


Runner = Callable[..., Outcome]

"""Ctrl-C during `chaosrunner demo` ends the demo: no further experiment starts."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.cli import demo
from chaosrunner.engine.signals import SIGNALS
from chaosrunner.report.model import RunReport


def test_a_signal_during_the_demo_stops_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    started: list[str] = []

    def run_one(path: Path, args: argparse.Namespace) -> RunReport:
        started.append(path.stem)
        SIGNALS.arm()  # as run_file does
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this experiment runs
        return RunReport(verdict="interrupted", exit_code=130, experiment=path.stem,
                         run_id="r", started_at="2026-01-01T00:00:00Z",
                         ended_at="2026-01-01T00:00:01Z")

    @contextlib.contextmanager
    def no_system(state_dir: Path) -> Iterator[None]:
        yield

    monkeypatch.setattr(demo, "run_one", run_one)
    monkeypatch.setattr(demo, "demo_system", no_system)
    args = argparse.Namespace(only=[], state_dir=str(tmp_path), report_dir=None, output=None)
    assert demo.command(args) == 130
    assert len(started) == 1
    assert SIGNALS.received == ["SIGINT"]
    capsys.readouterr()

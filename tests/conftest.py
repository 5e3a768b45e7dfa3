from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _signal_handlers_given_back() -> Iterator[None]:
    """A run in the test process arms chaosrunner's process-wide SIGINT/SIGTERM handler
    (it stays until the process exits); pytest's own Ctrl-C must work after the test."""
    yield
    from chaosrunner.engine.signals import SIGNALS

    SIGNALS.disarm()

"""Fixtures for the SLO tests: a Prometheus factory and a controllable exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_fixture import prometheus  # noqa: F401  (fixture)
from synthetic_traffic import SyntheticTraffic


@pytest.fixture
def traffic() -> Iterator[SyntheticTraffic]:
    exporter = SyntheticTraffic()
    exporter.serve()
    try:
        yield exporter
    finally:
        exporter.stop()

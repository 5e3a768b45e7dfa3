"""report/facts.py: values read in the unit of the SLO they belong to."""

from __future__ import annotations

import pytest

from chaosrunner.report import facts
from chaosrunner.report.model import SLOInfo
from chaosrunner.spec.models import LATENCY_STATS


@pytest.mark.parametrize("stat", LATENCY_STATS)
def test_every_latency_statistic_the_spec_accepts_reads_in_time_units(stat: str) -> None:
    info = SLOInfo("api_latency", "http", 0.05, "<", False, 3600.0, stat)
    assert facts.slo_unit(info) == "seconds"
    assert facts.target_text(info) == "< 50 ms"


def test_availability_reads_as_a_percentage() -> None:
    info = SLOInfo("api", "http", 0.995, ">=", True, 3600.0, "availability")
    assert facts.target_text(info) == ">= 99.5%"

"""Latency statistics (`p50` ... `p99`, `max`, `mean`, `min`: `spec.models.LATENCY_STATS`)
over raw latencies: the probe computes them per interval, the engine per phase."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_stat(latencies: Sequence[float], stat: str) -> float:
    """One statistic of a non-empty sequence of latencies."""
    if stat == "max":
        return max(latencies)
    if stat == "min":
        return min(latencies)
    if stat == "mean":
        return sum(latencies) / len(latencies)
    return percentile(latencies, float(stat[1:]))

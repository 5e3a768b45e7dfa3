"""The fault phase's timeline: when each fault goes in and, if timed, when it comes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chaosrunner.engine.plan import Plan, PlannedFault


@dataclass(frozen=True)
class TimelineEvent:
    offset: float
    kind: Literal["inject", "revert"]
    planned: PlannedFault


def build_timeline(plan: Plan) -> list[TimelineEvent]:
    """Injections at `at`, timed reverts at `at + for`; reverts first when times tie,
    so a fault that ends as another starts never overlaps it."""
    events: list[TimelineEvent] = []
    for planned in plan.faults:
        events.append(TimelineEvent(planned.start, "inject", planned))
        if planned.end is not None and planned.end < plan.duration:
            events.append(TimelineEvent(planned.end, "revert", planned))
    return sorted(events, key=lambda e: (e.offset, 0 if e.kind == "revert" else 1))

"""Time, injected: the engine asks a clock, so tests run its logic without real sleeps."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def now(self) -> datetime:
        """Wall time, UTC, for reports."""
        ...

    async def sleep_until(self, deadline: float, wake: asyncio.Event) -> bool:
        """Wait until monotonic() >= deadline or `wake` is set; True when woken."""
        ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float, wake: asyncio.Event) -> bool:
        remaining = deadline - time.monotonic()
        if wake.is_set():
            return True
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(wake.wait(), timeout=remaining)
        except TimeoutError:
            return False
        return True

"""What watches a run from the side while its phases go on: the halt file, the stop
conditions observers lend it (a firing alert), and the watchdog process that takes the
faults back if this process dies. Each only ever calls `Control.request_abort`."""

from __future__ import annotations

import asyncio
from typing import Any

from chaosrunner.engine.clock import Clock
from chaosrunner.engine.context import RunOptions, StopCondition
from chaosrunner.engine.control import Control
from chaosrunner.engine.ledger import Ledger
from chaosrunner.errors import Refused, SourceError


async def watch_halt(ledger: Ledger, since: float, control: Control) -> None:
    """Abort when `chaosrunner halt` (or a halt file newer than `since`) says so."""
    while True:
        reason = await asyncio.to_thread(ledger.halt_reason, since)
        if reason is not None:
            control.request_abort(None, f"halt: {reason}")
            return
        await asyncio.sleep(0.1)


async def stop_condition_gate(conditions: tuple[StopCondition, ...]) -> None:
    """Refuse to start while a stop condition holds, or cannot be read."""
    for condition in conditions:
        try:
            reason = await condition.check()
        except SourceError as exc:
            raise Refused(f"cannot tell whether it is safe to start: {exc}") from None
        if reason is not None:
            raise Refused(f"{reason}; not starting")


async def watch_stop_conditions(conditions: tuple[StopCondition, ...], control: Control,
                                clock: Clock, interval: float, grace: float) -> None:
    """Abort when a stop condition says so, or when one cannot be read for `grace`
    seconds (as long as an SLI may give no data)."""
    unreadable_since: dict[int, float] = {}

    async def stop_reason(condition: StopCondition, index: int) -> str | None:
        try:
            reason = await condition.check()
        except SourceError as exc:
            since = unreadable_since.setdefault(index, clock.monotonic())
            if clock.monotonic() - since < grace:
                return None
            return f"{condition.source} unreadable for {grace:g}s: {exc}"
        unreadable_since.pop(index, None)
        return reason

    while True:
        await asyncio.sleep(interval)
        for index, condition in enumerate(conditions):
            try:
                reason = await stop_reason(condition, index)
            except Exception as exc:  # noqa: BLE001 - a watcher that dies must not go unseen
                reason = f"{condition.source}: {type(exc).__name__}: {exc}"
            if reason is not None:
                control.request_abort(None, reason)
                return


class WatchdogLink:
    """This run's side of the watchdog (`engine.watchdog`): started before anything is
    injected, fed a heartbeat, told when the rollback is done."""

    def __init__(self) -> None:
        self.watchdog: Any = None  # engine.watchdog.Watchdog once started
        self._heartbeat: asyncio.Future[None] | None = None

    async def start(self, options: RunOptions, run_id: str, name: str, started_at: str,
                    control: Control) -> None:
        """Raises StateError when no watchdog can be started."""
        # Imported here: only runs with a watchdog (the CLI's) need its process machinery.
        from chaosrunner.engine.watchdog import HEARTBEAT_INTERVAL, Watchdog

        self.watchdog = await asyncio.to_thread(Watchdog.start, options.state_dir, run_id,
                                                name, started_at)
        self._heartbeat = asyncio.ensure_future(self._beat(control, HEARTBEAT_INTERVAL))

    async def _beat(self, control: Control, interval: float) -> None:
        while self.watchdog.beat():
            await asyncio.sleep(interval)
        control.request_abort(None, "the watchdog is gone (killed, or it took the faults "
                              "back because this runner stopped answering)")

    def finish(self) -> None:
        """The rollback is done (or failed and said so): the watchdog exits quietly."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.watchdog is not None:
            self.watchdog.finish()

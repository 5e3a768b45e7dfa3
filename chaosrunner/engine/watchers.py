"""What watches a run from the side while its phases go on: the halt sources, the stop
conditions observers lend it (a firing alert), and the watchdog process that takes the
faults back if this process dies. Each only ever calls `Control.request_abort`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chaosrunner.engine.clock import Clock
from chaosrunner.engine.context import RunOptions, StopCondition
from chaosrunner.engine.control import Control
from chaosrunner.engine.halt import (
    CLEAR_HINT,
    HALT_PREFIX,
    HALTED_PREFIX,
    HaltSourceError,
    HaltSources,
)
from chaosrunner.errors import Refused, SourceError


async def halt_gate(halts: HaltSources) -> None:
    """Refuse to start while halted, or while a halt source cannot be read."""
    try:
        reason = await asyncio.to_thread(halts.check)
    except HaltSourceError as exc:
        raise Refused(f"{exc}; not starting: a run its halt source cannot reach must not "
                      "start") from None
    if reason is not None:
        raise Refused(f"{HALTED_PREFIX} {reason}; {CLEAR_HINT}")


async def watch_halt(halts: HaltSources, control: Control, interval: float) -> None:
    """Abort at a halt: the state dir's HALT file is read every 0.1 s, a remote source
    (ConfigMap, URL) twice per sample interval, so a halt is seen within one. A remote
    source unreadable for max(10 s, 3 intervals) aborts: the big red button must reach
    every run."""
    remote_every = min(interval / 2, 1.0)
    unreachable_limit = max(10.0, 3 * interval)
    next_remote, failing_since = 0.0, None
    while True:
        now = time.monotonic()
        which = list(halts.local)
        if halts.remote and now >= next_remote:
            which += halts.remote
            next_remote = now + remote_every
        try:
            reason = await asyncio.to_thread(halts.check, which)
        except HaltSourceError as exc:
            failing_since = failing_since or now
            if now - failing_since > unreachable_limit:
                control.request_abort(None, f"halt source unreachable for "
                                      f"{now - failing_since:.0f}s: {exc}")
                return
            reason = None
        else:
            if len(which) > len(halts.local):
                failing_since = None
        if reason is not None:
            control.request_abort(None, f"{HALT_PREFIX} {reason}")
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
                    control: Control, drivers: tuple[str, ...] = ()) -> None:
        """Raises StateError when no watchdog can be started."""
        # Imported here: only runs with a watchdog (the CLI's) need its process machinery.
        from chaosrunner.engine.watchdog import HEARTBEAT_INTERVAL, Watchdog

        self.watchdog = await asyncio.to_thread(Watchdog.start, options.state_dir, run_id,
                                                name, started_at, drivers)
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

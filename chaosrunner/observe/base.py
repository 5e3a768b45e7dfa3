"""The observer interface, and the hub that isolates observers from the run.

An observer sees the run's events (the journal's dicts) and, once the run has ended and
before its reports are written, the report itself:

    hub = ObserverHub(inline=[tracing], background=[notifier, grafana])
    events.subscribe(hub.listener)
    ...                                   # the run
    hub.finish(report)                    # fills report.announced

Inline observers are cheap and in-memory (traces, metrics) and run in the event loop.
Background observers talk to the network (notifications, annotations): they run in one
worker thread, in event order, so a slow webhook never delays the guard or a rollback.
A failing observer is isolated per call: the failure is logged (without its URL) and
counted in its announcement, and the run goes on.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaosrunner.report.model import Announcement, RunReport

Event = Mapping[str, Any]


class Observer(Protocol):
    def on_event(self, event: Event) -> None:
        """One journal event, as it happens."""
        ...

    def finish(self, report: RunReport) -> None:
        """The run has ended; `report.report_dir` is set, its files are not written yet."""
        ...

    def announcements(self) -> list[Announcement]:
        """Where the run was announced, for the report."""
        ...


def warn(message: str) -> None:
    print(f"chaosrunner: {message}", file=sys.stderr, flush=True)


@dataclass
class _Finish:
    report: RunReport


class ObserverHub:
    """Owns a run's observers; its `listener` goes on the run's EventLog."""

    def __init__(self, inline: Sequence[Observer] = (), background: Sequence[Observer] = (),
                 finish_timeout: float = 60.0) -> None:
        self.inline = list(inline)
        self.background = list(background)
        self.finish_timeout = finish_timeout
        self._queue: queue.Queue[Event | _Finish] = queue.Queue()
        self._worker: threading.Thread | None = None

    def listener(self, event: dict[str, Any]) -> None:
        for observer in self.inline:
            _isolated(observer.on_event, event)
        if self.background:
            self._start_worker()
            self._queue.put(dict(event))

    def finish(self, report: RunReport) -> None:
        """End every observer (bounded) and record their announcements in the report."""
        for observer in self.inline:
            _isolated(observer.finish, report)
        if self.background:
            self._start_worker()
            self._queue.put(_Finish(report))
            assert self._worker is not None
            self._worker.join(self.finish_timeout)
            if self._worker.is_alive():
                warn(f"notifications/annotations still busy after {self.finish_timeout:g}s; "
                     "the run's reports are written without waiting for them")
        for observer in (*self.inline, *self.background):
            report.announced.extend(_isolated(observer.announcements, default=[]) or [])

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="chaosrunner-observers",
                                            daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            for observer in self.background:
                if isinstance(item, _Finish):
                    _isolated(observer.finish, item.report)
                else:
                    _isolated(observer.on_event, item)
            if isinstance(item, _Finish):
                return


def _isolated(call: Any, *args: Any, default: Any = None) -> Any:
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - an observer must never break the run
        owner = type(getattr(call, "__self__", call)).__name__
        warn(f"{owner} failed and was skipped for this event: {type(exc).__name__}: {exc}")
        return default

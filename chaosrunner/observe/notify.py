"""Notifications through apprise: Slack, Teams, Discord, Mattermost, PagerDuty, e-mail, JSON
webhooks ... one URL each (https://github.com/caronc/apprise/wiki).

Messages go out on `start`, `abort`, `halt` (an abort by `chaosrunner halt`),
`rollback_incomplete` and `end` (verdict and report path). A failed message never changes
the run: it is logged (with apprise's privacy form of the URL, never the URL itself) and
counted in the report.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosrunner.engine.events import AbortRequested, PhaseBegun
from chaosrunner.errors import InvalidInput
from chaosrunner.observe.base import Event, warn
from chaosrunner.report.model import Announcement, RunReport
from chaosrunner.secrets import resolve_env_refs
from chaosrunner.spec.models import NotifyEvent, NotifyTarget

# apprise logs through `logging`; without a handler Python's last-resort handler would
# print its warnings, ours say the same without any part of the URL.
logging.getLogger("apprise").addHandler(logging.NullHandler())


@dataclass
class Channel:
    """One resolved target: its apprise object, what it is shown as, and its counts."""

    target: NotifyTarget
    apprise: Any
    display: str
    announcement: Announcement = field(init=False)

    def __post_init__(self) -> None:
        self.announcement = Announcement("notify", self.display)


def _apprise() -> Any:
    # apprise's e-mail plugin imports the stdlib's deprecated `imghdr` when it is first
    # used (from a worker thread, where catching the warning is not safe): import it here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        with contextlib.suppress(ImportError):  # gone in Python 3.13; apprise has a shim
            import imghdr  # noqa: F401
        import apprise
    return apprise


def open_channel(target: NotifyTarget, where: str) -> Channel:
    """Resolve `${env:...}` and check apprise knows the URL; InvalidInput otherwise."""
    apprise = _apprise()
    url = resolve_env_refs(target.url.get_secret_value(), where)
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise InvalidInput(f"{where}: apprise does not understand this URL (its scheme is "
                           f"{url.split('://', 1)[0]!r}); see the apprise wiki for the "
                           "URL of your service")
    client = apprise.Apprise()
    client.add(plugin)
    private_url: Any = plugin.url
    display = target.name or str(private_url(privacy=True)).split("?", 1)[0]
    return Channel(target, client, display)


class Notifier:
    """A background observer (chaosrunner.observe.base) sending the run's messages."""

    def __init__(self, channels: Sequence[Channel], experiment: str, run_id: str) -> None:
        self.channels = list(channels)
        self.experiment = experiment
        self.run_id = run_id
        self._started = False

    def on_event(self, event: Event) -> None:
        kind = event["event"]
        if kind == PhaseBegun.kind and not self._started:
            self._started = True
            self.send("start", f"chaos experiment {self.experiment} started",
                      f"run {self.run_id} started at {event['time']}")
        elif kind == AbortRequested.kind:
            reason = str(event.get("message", ""))
            which: NotifyEvent = "halt" if reason.startswith("halt") else "abort"
            self.send(which, f"chaos experiment {self.experiment}: {which}",
                      f"run {self.run_id}: {reason}; rolling back every fault")

    def finish(self, report: RunReport) -> None:
        if report.verdict == "rollback_incomplete":
            self.send("rollback_incomplete",
                      f"chaos experiment {self.experiment}: ROLLBACK INCOMPLETE",
                      f"run {self.run_id}: {report.reason}. Run `chaosrunner recover` now.",
                      failure=True)
        body = f"run {self.run_id}: verdict {report.verdict} (exit {report.exit_code})"
        if report.reason:
            body += f"\nreason: {report.reason}"
        body += f"\nreport: {report.report_dir}"
        self.send("end", f"chaos experiment {self.experiment}: {report.verdict}", body,
                  failure=report.verdict not in ("passed", "not_started"))

    def announcements(self) -> list[Announcement]:
        return [channel.announcement for channel in self.channels]

    def send(self, which: NotifyEvent, title: str, body: str, failure: bool = False) -> None:
        apprise = _apprise()
        kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO
        for channel in self.channels:
            if which not in channel.target.events:
                continue
            try:
                ok = bool(channel.apprise.notify(body=body, title=title, notify_type=kind))
            except Exception:  # noqa: BLE001 - a failed notification never changes the run
                ok = False
            if ok:
                channel.announcement.sent += 1
            else:
                channel.announcement.failed += 1
                warn(f"notification ({which}) to {channel.display} failed; the run goes on")

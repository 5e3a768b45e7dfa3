"""Grafana region annotations: one per run and one per fault (inject -> revert).

Grafana's annotations HTTP API: `POST /api/annotations` with `time` (epoch ms),
`timeEnd`, `tags`, `text` and optionally `dashboardUID` / `panelId` answers
`{"id": N, "message": "Annotation added"}`; `PATCH /api/annotations/N` with the fields to
change closes the region. Each annotation is posted open (`timeEnd == time`) and patched
with its end, so a dashboard shows the fault while it is in effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from chaosrunner.engine.events import Injecting, PhaseBegun, Reverted
from chaosrunner.observe.base import Event, warn
from chaosrunner.report.model import Announcement, RunReport
from chaosrunner.secrets import display_url, resolve_env_refs
from chaosrunner.spec.models import GrafanaAnnotations


@dataclass
class Region:
    """An annotation being drawn: its id once posted, and what it says."""

    start_ms: int
    text: str
    tags: list[str]
    id: int | None = None
    targets: list[str] = field(default_factory=list)
    open_keys: set[str] = field(default_factory=set)


def epoch_ms(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp() * 1000)


class GrafanaAnnotator:
    """A background observer posting and closing region annotations."""

    def __init__(self, spec: GrafanaAnnotations, experiment: str, run_id: str,
                 timeout: float = 5.0, transport: httpx.BaseTransport | None = None,
                 where: str = "annotations.grafana") -> None:
        headers = {"Accept": "application/json"}
        if spec.token is not None:
            token = resolve_env_refs(spec.token.get_secret_value(), f"{where}.token")
            headers["Authorization"] = f"Bearer {token}"
        self.spec = spec
        self.client = httpx.Client(base_url=spec.url.rstrip("/"), headers=headers,
                                   timeout=timeout, transport=transport)
        self.experiment = experiment
        self.run_id = run_id
        self.run_region: Region | None = None
        self.faults: dict[str, Region] = {}
        self.shown_url = display_url(spec.url)
        self.announcement = Announcement("grafana", self.shown_url, detail=spec.dashboard_uid)

    def on_event(self, event: Event) -> None:
        kind = event["event"]
        if self.run_region is None and kind == PhaseBegun.kind:
            self.run_region = Region(epoch_ms(event["time"]),
                                     f"chaosrunner run {self.run_id} ({self.experiment})",
                                     self._tags("run"))
            self._post(self.run_region)
        elif kind == Injecting.kind:
            self._fault_injected(event)
        elif kind == Reverted.kind:
            self._fault_reverted(event)

    def _fault_injected(self, event: Event) -> None:
        name = str(event["fault"])
        region = self.faults.get(name)
        if region is None:
            region = self.faults[name] = Region(epoch_ms(event["time"]), "",
                                                self._tags("fault", name))
        region.targets.append(str(event["target"]))
        region.open_keys.add(str(event["key"]))
        region.text = self._fault_text(name, str(event["action"]), region.targets)
        if region.id is None:
            self._post(region)

    def _fault_reverted(self, event: Event) -> None:
        region = self.faults.get(str(event["fault"]))
        if region is None:
            return
        region.open_keys.discard(str(event["key"]))
        if not region.open_keys:
            self._close(region, epoch_ms(event["time"]), region.text)

    def finish(self, report: RunReport) -> None:
        end = epoch_ms(report.ended_at) if report.ended_at else None
        for region in self.faults.values():
            if region.open_keys:  # not taken back: say so on the dashboard
                self._close(region, end, region.text + " - NOT REVERTED, run "
                            "`chaosrunner recover`")
        if self.run_region is not None:
            text = f"{self.run_region.text}: {report.verdict}"
            if report.reason:
                text += f" - {report.reason}"
            self._close(self.run_region, end, text)
        self.client.close()

    def announcements(self) -> list[Announcement]:
        return [self.announcement]

    def _tags(self, kind: str, fault: str | None = None) -> list[str]:
        tags = ["chaosrunner", f"experiment:{self.experiment}", f"run:{self.run_id}", kind]
        if fault is not None:
            tags.append(f"fault:{fault}")
        return [*tags, *self.spec.tags]

    def _fault_text(self, name: str, action: str, targets: list[str]) -> str:
        return (f"chaosrunner fault {name} ({action}) on {', '.join(targets)} - "
                f"run {self.run_id}")

    def _post(self, region: Region) -> None:
        body: dict[str, Any] = {"time": region.start_ms, "timeEnd": region.start_ms,
                                "tags": region.tags, "text": region.text}
        if self.spec.dashboard_uid is not None:
            body["dashboardUID"] = self.spec.dashboard_uid
        if self.spec.panel_id is not None:
            body["panelId"] = self.spec.panel_id
        answer = self._call("POST", "/api/annotations", body)
        if answer is not None and isinstance(answer.get("id"), int):
            region.id = answer["id"]

    def _close(self, region: Region, end_ms: int | None, text: str) -> None:
        region.open_keys.clear()
        if region.id is None:
            return
        body: dict[str, Any] = {"timeEnd": max(end_ms or region.start_ms, region.start_ms),
                                "text": text}
        self._call("PATCH", f"/api/annotations/{region.id}", body)
        region.id = None  # closed once

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self.client.request(method, path, json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.announcement.failed += 1
            warn(f"Grafana annotation ({method} {path}) at {self.shown_url} failed: "
                 f"{_describe(exc)}; the run goes on")
            return None
        self.announcement.sent += 1
        return answer if isinstance(answer, dict) else {}


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    return f"{type(exc).__name__}: {exc}"

"""Firing alerts as stop conditions (`abort: {alerts: ...}`).

Read from Alertmanager's API v2 (`GET /api/v2/alerts?active=true&silenced=false&
inhibited=false`: a list of alerts with `labels` and `status.state`) or from Prometheus
(`GET /api/v1/alerts`: `data.alerts[]` with `labels` and `state` firing|pending; pending
alerts do not count). An alert matches when every matcher matches its labels, with the
semantics of Prometheus label matchers (regexes anchored; a missing label is "").

The engine polls `check()` like the halt file: a matching alert before the start refuses
the run (exit 3), one that starts firing aborts it, and a source that cannot be read aborts
after the same no-data limit as an SLI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from chaosrunner.errors import SourceError
from chaosrunner.secrets import display_url
from chaosrunner.spec.models import AlertsAbort


def matches(labels: Mapping[str, str], matchers: Sequence[tuple[str, str, str]]) -> bool:
    """Every (label, op, value) matcher holds for `labels`.

    >>> matches({"severity": "critical"}, [("severity", "=~", "crit.*")])
    True
    """
    for label, op, value in matchers:
        actual = labels.get(label, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and re.fullmatch(value, actual) is None:
            return False
        if op == "!~" and re.fullmatch(value, actual) is not None:
            return False
    return True


class AlertStop:
    """A StopCondition (chaosrunner.engine.context) on firing alerts."""

    def __init__(self, spec: AlertsAbort, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.spec = spec
        self.timeout = timeout
        self.transport = transport
        self.matchers = spec.parsed_matchers

    @property
    def source(self) -> str:
        if self.spec.alertmanager is not None:
            return f"Alertmanager {display_url(self.spec.alertmanager)}"
        return f"Prometheus {display_url(self.spec.prometheus or '')}"

    async def check(self) -> str | None:
        """`alert NAME is firing (...)` for the first matching alert, else None."""
        firing = [a for a in await self.firing() if matches(a, self.matchers)]
        if not firing:
            return None
        first = firing[0]
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(first.items()) if k != "alertname")
        more = f" and {len(firing) - 1} more" if len(firing) > 1 else ""
        return (f"alert {first.get('alertname', '?')} is firing ({labels}){more} on "
                f"{self.source}")

    async def firing(self) -> list[dict[str, str]]:
        """Label sets of the alerts that fire now."""
        if self.spec.alertmanager is not None:
            body = await self._get(self.spec.alertmanager, "/api/v2/alerts",
                                   {"active": "true", "silenced": "false",
                                    "inhibited": "false"})
            return _alertmanager_firing(body, self.source)
        assert self.spec.prometheus is not None
        body = await self._get(self.spec.prometheus, "/api/v1/alerts", {})
        return _prometheus_firing(body, self.source)

    async def _get(self, base: str, path: str, params: dict[str, str]) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self.timeout,
                                         transport=self.transport) as client:
                response = await client.get(base.rstrip("/") + path, params=params)
                response.raise_for_status()
                return response.json()
        except httpx.HTTPStatusError as exc:
            raise SourceError(f"{self.source} answered HTTP {exc.response.status_code} to "
                              f"{path}") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"{self.source} cannot be read ({type(exc).__name__}: "
                              f"{exc})") from None


def _alertmanager_firing(body: Any, source: str) -> list[dict[str, str]]:
    if not isinstance(body, list):
        raise SourceError(f"{source}: /api/v2/alerts did not answer a list of alerts")
    return [_labels(alert) for alert in body
            if isinstance(alert, dict) and alert.get("status", {}).get("state") == "active"]


def _prometheus_firing(body: Any, source: str) -> list[dict[str, str]]:
    alerts = body.get("data", {}).get("alerts") if isinstance(body, dict) else None
    if not isinstance(alerts, list):
        raise SourceError(f"{source}: /api/v1/alerts did not answer data.alerts")
    return [_labels(alert) for alert in alerts
            if isinstance(alert, dict) and alert.get("state") == "firing"]


def _labels(alert: dict[str, Any]) -> dict[str, str]:
    labels = alert.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

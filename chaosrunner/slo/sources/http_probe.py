"""Built-in probe traffic: requests at a fixed rate, availability and latency per interval.

Open-loop by design: request *i* is due at `start + i / rate` whatever happened to the
ones before, so a slow target cannot slow the probe down and hide its own slowness.
Requests in flight are capped (default: 2 x rate x timeout + 2, twice what a target that
answers just within the timeout needs, leaving room for event-loop lag);
a request due while the cap is reached is counted as a failure ("shed"), so a hanging
target shows up as errors at once instead of as an unbounded pile of waiting requests.

SLOs of one run that describe the same probe (`checkout_probe` for availability and
`checkout_latency` for p99, say) share one stream of traffic, so the target sees the
rate the file says, not a multiple of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaosrunner.secrets import resolve_env_refs
from chaosrunner.slo.latency import latency_stat
from chaosrunner.slo.sources.base import BaseSource, Reading, SourceContext
from chaosrunner.spec.models import LATENCY_STATS, SLO, HttpProbe, SteadyState


@dataclass(frozen=True)
class Outcome:
    good: bool
    latency: float
    error: str | None = None


class ProbeTraffic:
    """One open-loop request generator, fanned out to every subscribing SLO."""

    def __init__(self, probe: HttpProbe,
                 trace_headers: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.probe = probe
        self.trace_headers = trace_headers
        self.cap = probe.max_in_flight or 2 * math.ceil(probe.rate * probe.timeout) + 2
        self.inboxes: list[list[Outcome]] = []
        self.in_flight = self.sent = self.shed = 0
        self.users = 0
        self._client: Any = None
        self._generator: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()

    def subscribe(self) -> list[Outcome]:
        inbox: list[Outcome] = []
        self.inboxes.append(inbox)
        return inbox

    async def start(self) -> None:
        self.users += 1
        if self._generator is not None:
            return
        import aiohttp  # a lean client: its own overhead must not show up as latency

        connector = aiohttp.TCPConnector(limit=self.cap, force_close=False)
        self._client = aiohttp.ClientSession(
            connector=connector, headers=self._headers(),
            timeout=aiohttp.ClientTimeout(total=self.probe.timeout))
        self._generator = asyncio.ensure_future(self._generate())

    def _headers(self) -> dict[str, str]:
        """Headers with `${env:NAME}` resolved (a token is a secret: never printed)."""
        return {name: resolve_env_refs(value, f"http probe {self.probe.url}: header {name}")
                for name, value in self.probe.headers.items()}

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0 or self._generator is None:
            return
        self._generator.cancel()
        await asyncio.gather(self._generator, return_exceptions=True)
        for task in list(self._requests):
            task.cancel()
        await asyncio.gather(*self._requests, return_exceptions=True)
        await self._client.close()
        self._generator = None

    def _deliver(self, outcome: Outcome) -> None:
        for inbox in self.inboxes:
            inbox.append(outcome)

    async def _generate(self) -> None:
        period = 1.0 / self.probe.rate
        start = time.monotonic()
        index = 0
        while True:
            delay = start + index * period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            index += 1
            if self.in_flight >= self.cap:
                self.shed += 1
                self._deliver(Outcome(False, self.probe.timeout,
                                      f"shed: {self.cap} requests already in flight"))
                continue
            self.in_flight += 1
            task = asyncio.ensure_future(self._request())
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _request(self) -> None:
        self.sent += 1
        began = time.monotonic()
        try:
            headers = dict(self.trace_headers()) if self.trace_headers else None
            async with self._client.request(self.probe.method, self.probe.url,
                                            data=self.probe.body, headers=headers,
                                            allow_redirects=False) as response:
                await response.read()
                status = response.status
            latency = time.monotonic() - began
            good = self.probe.is_expected(status)
            self._deliver(Outcome(good, latency, None if good else f"HTTP {status}"))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._deliver(Outcome(False, time.monotonic() - began,
                                  f"Timeout: no answer within {self.probe.timeout:g}s"))
        except Exception as exc:  # noqa: BLE001 - every transport failure is a bad request
            self._deliver(Outcome(False, time.monotonic() - began, _describe(exc)))
        finally:
            self.in_flight -= 1


class HttpProbeSource(BaseSource):
    """An SLO's view of a (possibly shared) probe."""

    def __init__(self, name: str, slo: SLO, steady_state: SteadyState | None,
                 context: SourceContext) -> None:
        super().__init__(name, slo, steady_state, context)
        assert slo.sli.http is not None
        key = ("http-probe", slo.sli.http.model_dump_json())
        traffic = context.shared.get(key)
        if traffic is None:
            traffic = context.shared[key] = ProbeTraffic(slo.sli.http, context.trace_headers)
        self.traffic: ProbeTraffic = traffic
        self.inbox = traffic.subscribe()

    async def start(self) -> None:
        await self.traffic.start()

    async def close(self) -> None:
        await self.traffic.release()

    async def read(self, interval: float) -> Reading:
        outcomes = self.inbox[:]
        del self.inbox[:len(outcomes)]
        return summarise(outcomes, self.slo.sli.effective_stat, self.traffic.probe.url)


def summarise(outcomes: list[Outcome], stat: str, url: str) -> Reading:
    """One reading from the outcomes of an interval."""
    if not outcomes:
        return Reading(value=None, good=0, total=0, note=f"no probe request to {url} completed")
    good = sum(1 for o in outcomes if o.good)
    # Latency is that of the requests that succeeded (docs/design.md): a refused connection
    # is fast and says nothing about it; an interval with no success has no latency.
    latencies = tuple(o.latency for o in outcomes if o.good)
    stats = {"availability": good / len(outcomes), "count": float(len(outcomes))}
    ordered = sorted(latencies)  # once; re-sorting a sorted list is linear (timsort)
    for name in LATENCY_STATS if ordered else ():
        stats[name] = latency_stat(ordered, name)
    errors = Counter(o.error for o in outcomes if o.error)
    note = None
    if errors:
        worst, count = errors.most_common(1)[0]
        note = (f"{len(outcomes) - good} of {len(outcomes)} requests to {url} failed "
                f"({count}x {worst})")
    if not ordered and stat != "availability":
        note = f"no request to {url} succeeded: no latency" + (f"; {note}" if note else "")
    return Reading(value=stats.get(stat), good=good, total=len(outcomes), stats=stats,
                   latencies=latencies, note=note)


def _describe(exc: Exception) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return f"ConnectError: {reason} ({exc.host}:{exc.port})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""A real HTTP exporter whose traffic a test or bench controls.

`SyntheticTraffic` serves `http_requests_total{handler, code}` and
`http_request_duration_seconds{handler}` (the demo shop's names) on 127.0.0.1 through
prometheus_client's own HTTP server. Its counters are a function of time: `rate` requests
per second, `error_ratio` of them answered 500, each taking `latency` seconds, so the
test sets exact ratios without a load loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SyntheticTraffic(Collector):
    def __init__(self, rate: float = 100.0, error_ratio: float = 0.0,
                 latency: float = 0.004) -> None:
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self.rate, self.error_ratio, self.latency = rate, error_ratio, latency
        self.good = self.bad = self.latency_sum = 0.0
        self.bucket_counts = [0.0] * (len(BUCKETS) + 1)  # last one: +Inf only
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def set(self, *, rate: float | None = None, error_ratio: float | None = None,
            latency: float | None = None) -> None:
        """Change the traffic from now on (counters keep what they have)."""
        with self._lock:
            self._advance()
            self.rate = self.rate if rate is None else rate
            self.error_ratio = self.error_ratio if error_ratio is None else error_ratio
            self.latency = self.latency if latency is None else latency

    def _advance(self) -> None:
        now = time.monotonic()
        served = self.rate * (now - self._last)
        self._last = now
        self.bad += served * self.error_ratio
        self.good += served * (1.0 - self.error_ratio)
        self.latency_sum += served * self.latency
        index = next((i for i, le in enumerate(BUCKETS) if self.latency <= le), len(BUCKETS))
        self.bucket_counts[index] += served

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            self._advance()
            requests = CounterMetricFamily("http_requests", "requests served",
                                           labels=["handler", "code"])
            requests.add_metric(["/checkout", "200"], self.good)
            requests.add_metric(["/checkout", "500"], self.bad)
            cumulative, buckets = 0.0, []
            for le, count in zip((*map(str, BUCKETS), "+Inf"), self.bucket_counts, strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            duration = HistogramMetricFamily("http_request_duration_seconds", "latency",
                                             labels=["handler"])
            duration.add_metric(["/checkout"], buckets, self.latency_sum)
        yield requests
        yield duration

    def serve(self) -> str:
        registry = CollectorRegistry()
        registry.register(self)
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self.port = self._server.server_port
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

"""The demo `checkout` service: takes orders, has payments confirm them.

    python -m chaosrunner.demo.checkout --port 8080 \\
        --payments http://127.0.0.1:8081,http://127.0.0.1:8082 [--timeout-ms 250] [--attempts 3]

Each order is paid by one payments replica, chosen round-robin. A call has a short
timeout; when it fails (refused, timed out, non-200) the next replica is tried, up
to `--attempts` calls. Every replica has its own circuit breaker (pybreaker): after
`--breaker-fail-max` consecutive failures it opens and that replica is skipped,
without a call, until `--breaker-reset-s` has passed and one trial call succeeds.
The default of 5 failures in a row opens the breaker of a replica that is down within a
second, but not that of a replica that fails one call in ten (a 10% run of five is 1 in
100,000 calls; of three, 1 in 1,000, which opened a healthy replica's breaker in 3 of 5
runs of payments-errors, and two of them with payments-1's left orders one replica).

Endpoints:
    GET|POST /checkout   200 {"order_id", "payment_id", "replica", "attempts"} when paid,
                         503 {"error", "order_id"} when no replica could pay
    GET /orders          {"accepted", "failed", "ids_digest"} (`?ids=1` adds the ids)
    GET /breakers        {"replicas": [{"url", "state", "failures"}]}
    GET /healthz, GET /metrics (also checkout_payment_attempts_total{replica,outcome}
                         and checkout_breaker_open{replica})

With `--journal FILE` each accepted order is appended as
`<order_id> <payment_id> <replica>`, for the no-data-loss audit (see shop.py).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pybreaker
from prometheus_client import Counter, Gauge

from chaosrunner.demo._server import App, Journal, Metrics, Request, Response, Route, digest, serve


class PaymentFailed(Exception):
    """A payments replica answered, but not with a confirmation."""


@dataclass(frozen=True)
class Paid:
    payment_id: str
    replica: str
    attempts: int


class Replica:
    """One payments replica and the circuit breaker in front of it."""

    def __init__(self, url: str, fail_max: int, reset_timeout: float) -> None:
        self.url = url.rstrip("/")
        # The failing call itself raises its own error; only later calls get
        # CircuitBreakerError, so "skipped" in the metrics means really skipped.
        self.breaker = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout,
                                                name=self.url, throw_new_error_on_trip=False)

    @property
    def is_open(self) -> bool:
        return bool(self.breaker.current_state == pybreaker.STATE_OPEN)

    def open_gauge(self) -> float:
        return 1.0 if self.is_open else 0.0


class Checkout:
    """Orders in, payments out, with retry and per-replica circuit breakers."""

    def __init__(self, payment_urls: Sequence[str], *, timeout: float = 0.25, attempts: int = 3,
                 fail_max: int = 5, reset_timeout: float = 5.0,
                 journal: Journal | None = None) -> None:
        if not payment_urls:
            raise ValueError("checkout needs at least one payments URL")
        self.replicas = [Replica(url, fail_max, reset_timeout) for url in payment_urls]
        self.attempts = max(1, attempts)
        self.journal = journal
        self.metrics = Metrics()
        self._attempt_counter = Counter(
            "checkout_payment_attempts_total", "Calls to payments replicas, by outcome",
            ["replica", "outcome"], registry=self.metrics.registry)
        breaker_open = Gauge("checkout_breaker_open", "1 when the replica's breaker is open",
                             ["replica"], registry=self.metrics.registry)
        for replica in self.replicas:
            breaker_open.labels(replica=replica.url).set_function(replica.open_gauge)
        # Connections are pooled and kept alive: a new TCP connection per order
        # would cost more than the payment itself. TCP_NODELAY: a POST's headers and
        # body are two writes, and Nagle would hold the body back for a delayed ACK.
        transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.client = httpx.Client(timeout=timeout, transport=transport)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._accepted: list[str] = []
        self._failed = 0

    def checkout(self, request: Request) -> Response:
        order_id = f"ord-{uuid.uuid4().hex[:16]}"
        paid = self.pay(order_id)
        if paid is None:
            with self._lock:
                self._failed += 1
            return Response.json(503, {"error": "no payments replica could take the payment",
                                       "order_id": order_id})
        # Journal before counting: an order is only "accepted" once it is on record.
        if self.journal is not None:
            self.journal.append(order_id, paid.payment_id, paid.replica)
        with self._lock:
            self._accepted.append(order_id)
        return Response.json(200, {"order_id": order_id, "payment_id": paid.payment_id,
                                   "replica": paid.replica, "attempts": paid.attempts})

    def pay(self, order_id: str) -> Paid | None:
        """Have one replica confirm `order_id`; None when none could within the attempts."""
        count = len(self.replicas)
        first = next(self._turn) % count
        calls = 0
        for offset in range(count):
            if calls >= self.attempts:
                break
            replica = self.replicas[(first + offset) % count]
            try:
                with replica.breaker.calling():
                    calls += 1
                    payment_id = self._call(replica, order_id)
            except pybreaker.CircuitBreakerError:
                self._attempt_counter.labels(replica=replica.url, outcome="skipped").inc()
                continue
            except (httpx.HTTPError, PaymentFailed):
                self._attempt_counter.labels(replica=replica.url, outcome="error").inc()
                continue
            self._attempt_counter.labels(replica=replica.url, outcome="ok").inc()
            return Paid(payment_id, replica.url, calls)
        return None

    def _call(self, replica: Replica, order_id: str) -> str:
        response = self.client.post(f"{replica.url}/pay", json={"order_id": order_id})
        if response.status_code != 200:
            raise PaymentFailed(f"{replica.url} answered {response.status_code}")
        try:
            payment_id = response.json().get("payment_id")
        except (ValueError, AttributeError):
            raise PaymentFailed(f"{replica.url} answered something that is not JSON") from None
        if not isinstance(payment_id, str) or not payment_id:
            raise PaymentFailed(f"{replica.url} answered without a payment_id")
        return payment_id

    def orders(self, request: Request) -> Response:
        with self._lock:
            ids = list(self._accepted)
            failed = self._failed
        payload: dict[str, object] = {"accepted": len(ids), "failed": failed,
                                      "ids_digest": digest(ids)}
        if request.query.get("ids") in ("1", "true", "yes"):
            payload["ids"] = ids
        return Response.json(200, payload)

    def breakers(self, request: Request) -> Response:
        return Response.json(200, {"replicas": [
            {"url": r.url, "state": r.breaker.current_state, "failures": r.breaker.fail_counter}
            for r in self.replicas]})

    def close(self) -> None:
        self.client.close()
        if self.journal is not None:
            self.journal.close()

    def app(self, name: str = "checkout") -> App:
        return App(name, {
            "/checkout": Route(self.checkout, frozenset({"GET", "POST"})),
            "/orders": Route(self.orders),
            "/breakers": Route(self.breakers),
        }, metrics=self.metrics, on_close=self.close)


def _urls(text: str) -> list[str]:
    urls = [item.strip() for item in text.split(",") if item.strip()]
    bad = [url for url in urls if not url.startswith(("http://", "https://"))]
    if not urls or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated http:// URLs, got {text!r}")
    return urls


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaosrunner.demo.checkout",
                                     description="Demo checkout service.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--payments", type=_urls, required=True,
                        help="payments replicas, comma-separated base URLs")
    parser.add_argument("--timeout-ms", type=float, default=250.0,
                        help="timeout of one call to payments")
    parser.add_argument("--attempts", type=int, default=3, help="calls per order, at most")
    parser.add_argument("--breaker-fail-max", type=int, default=5,
                        help="consecutive failures that open a replica's breaker")
    parser.add_argument("--breaker-reset-s", type=float, default=5.0,
                        help="how long a breaker stays open before a trial call")
    parser.add_argument("--name", default="checkout")
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--journal", type=Path, help="append each accepted order to this file")
    parser.add_argument("--shop", default="", help="tag of the shop this service belongs to")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run checkout until SIGTERM/SIGINT."""
    args = parse_args(argv)
    checkout = Checkout(args.payments, timeout=max(args.timeout_ms, 1.0) / 1000.0,
                        attempts=args.attempts, fail_max=max(args.breaker_fail_max, 1),
                        reset_timeout=max(args.breaker_reset_s, 0.0),
                        journal=Journal(args.journal) if args.journal else None)
    return serve(checkout.app(args.name), args.host, args.port, args.pid_file)


if __name__ == "__main__":
    raise SystemExit(main())

"""The demo `payments` service: confirms payments; runs as several replicas.

    python -m chaosrunner.demo.payments --port 8081 --name payments-1 \\
        --pid-file .chaosrunner/shop/payments-1.pid [--delay-ms 5] [--journal F]

Endpoints:
    GET|POST /pay?order_id=ID   200 {"payment_id", "order_id", "replica"}
                                (order_id also accepted as a JSON body field)
    GET /payments               {"replica", "confirmed", "ids_digest"}
    GET /healthz, GET /metrics

With `--journal FILE` every confirmation is appended to FILE as
`<order_id> <payment_id>` before the answer is sent, so that a later audit can show
that every order checkout accepted was confirmed, even by a replica since killed.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from pathlib import Path

from chaosrunner.demo._server import App, Journal, Request, Response, Route, digest, serve


class Payments:
    """The state of one replica: the payments it confirmed."""

    def __init__(self, name: str, delay: float = 0.0, journal: Journal | None = None) -> None:
        self.name = name
        self.delay = delay
        self.journal = journal
        self._lock = threading.Lock()
        self._order_ids: list[str] = []

    def pay(self, request: Request) -> Response:
        order_id = request.field("order_id") or f"anon-{uuid.uuid4().hex[:12]}"
        if not order_id.replace("-", "").replace("_", "").isalnum() or len(order_id) > 64:
            return Response.json(400, {"error": "order_id must be 1-64 letters, digits, - or _"})
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self._order_ids.append(order_id)
            payment_id = f"{self.name}-{len(self._order_ids)}"
        if self.journal is not None:
            self.journal.append(order_id, payment_id)
        return Response.json(200, {"payment_id": payment_id, "order_id": order_id,
                                   "replica": self.name})

    def summary(self, request: Request) -> Response:
        with self._lock:
            ids = list(self._order_ids)
        return Response.json(200, {"replica": self.name, "confirmed": len(ids),
                                   "ids_digest": digest(ids)})

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def app(self) -> App:
        return App(self.name, {
            "/pay": Route(self.pay, frozenset({"GET", "POST"})),
            "/payments": Route(self.summary),
        }, on_close=self.close)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaosrunner.demo.payments",
                                     description="Demo payments service (one replica).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="payments", help="replica name, e.g. payments-1")
    parser.add_argument("--pid-file", type=Path, help="written once listening, removed on exit")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every payment")
    parser.add_argument("--journal", type=Path, help="append each confirmation to this file")
    parser.add_argument("--shop", default="", help="tag of the shop this replica belongs to "
                        "(only to tell shops apart in the process list)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one payments replica until SIGTERM/SIGINT."""
    args = parse_args(argv)
    journal = Journal(args.journal) if args.journal else None
    payments = Payments(args.name, max(args.delay_ms, 0.0) / 1000.0, journal)
    return serve(payments.app(), args.host, args.port, args.pid_file)


if __name__ == "__main__":
    raise SystemExit(main())

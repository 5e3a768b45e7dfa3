"""`chaosrunner load-worker --master HOST:PORT`: a Locust worker for load.http faults.

It connects to the master a `load.http` fault with `master: HOST:PORT` starts, makes
the traffic that master asks for, and, when the master goes away, waits for the next one.
Ends on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse

from chaosrunner.drivers.base import ParamError
from chaosrunner.errors import InvalidInput
from chaosrunner.load.settings import parse_master


def command(args: argparse.Namespace) -> int:
    try:
        host, port = parse_master(args.master)
    except ParamError as exc:
        raise InvalidInput(f"--master: {exc}") from None
    # Imported here: Locust (and gevent's monkey-patching) only in this process's worker.
    from chaosrunner.load.child import worker

    return worker(f"{host}:{port}")

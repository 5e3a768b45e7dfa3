"""`chaosrunner proxy`: run the Toxiproxy-compatible fault proxy in the foreground.

    chaosrunner proxy --host 127.0.0.1 --port 8474 --config proxies.json

`--config` is a list of proxies in Toxiproxy's populate format (JSON, or YAML by
extension). The command blocks until SIGINT or SIGTERM, then closes every proxy and
connection and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from chaosrunner.errors import InvalidInput
from chaosrunner.proxy.server import loop_factory, start


def command(args: argparse.Namespace) -> int:
    """Serve the API and the configured proxies until interrupted."""
    config = load_config(args.config) if args.config else None
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port} is not a TCP port (0-65535)")
    _log_to_stderr()
    raise_fd_limit()
    if not _is_loopback(args.host):
        print(f"chaosrunner proxy: warning: the API on {args.host} has no authentication; "
              "anyone who can reach it can inject faults", file=sys.stderr)

    try:
        factory = loop_factory(args.loop)
    except ImportError:
        raise InvalidInput("--loop uvloop: uvloop is not installed; install it with "
                           "pip install 'chaosrunner[fast]'") from None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_serve(args.host, args.port, config, zero_copy=not args.no_splice))


def raise_fd_limit() -> None:
    """Raise the file-descriptor soft limit to the hard limit, as Toxiproxy does: every
    connection through the proxy holds two descriptors, and a soft limit of 1,024 would
    cap it near 500 connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _log_to_stderr() -> None:
    """The proxy's own notices (an expired toxic, a stream that is not HTTP) go to stderr."""
    logger = logging.getLogger("chaosrunner.proxy")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("chaosrunner proxy: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


async def _serve(host: str, port: int, config: list[dict[str, Any]] | None,
                 zero_copy: bool) -> int:
    try:
        running = await start(host, port, config, zero_copy)
    except ValueError as exc:
        raise InvalidInput(f"{exc}; fix the --config file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {host}:{port} for the API: {exc.strerror or exc}; "
                           "pick another --port (Toxiproxy's default is 8474)") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    proxies = running.api.collection.proxies
    print(f"chaosrunner proxy: API on {running.url} ({len(proxies)} proxies)", flush=True)
    for proxy in proxies.values():
        print(f"  {proxy.name}: {proxy.listen} -> {proxy.upstream}"
              f"{'' if proxy.enabled else ' (disabled)'}", flush=True)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await running.close()
    print("chaosrunner proxy: stopped", flush=True)
    return 0


def load_config(path_text: str) -> list[dict[str, Any]]:
    """The proxies of a config file: a list of {name, listen, upstream, enabled}."""
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read proxy config {path}: {exc.strerror}") from None
    try:
        data = _parse_config(path, text)
    except ValueError as exc:
        raise InvalidInput(f"proxy config {path} is not valid: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InvalidInput(f"proxy config {path} must be a list of proxies like "
                           '[{"name": "payments", "listen": "127.0.0.1:21212", '
                           '"upstream": "127.0.0.1:8081"}]')
    return data


def _parse_config(path: Path, text: str) -> Any:
    if path.suffix not in (".yaml", ".yml"):
        return json.loads(text)  # JSONDecodeError is a ValueError
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

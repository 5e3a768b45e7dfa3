"""Fixtures for the proxy tests: the embedded server, an API client, a real TCP upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from proxyhelp import EchoServer

from chaosrunner.proxy.server import ProxyServerHandle, start_background


@pytest.fixture
def loop_kind() -> str:
    """The event loop the proxy runs on; the data-path modules run on both."""
    return "asyncio"


@pytest.fixture
def server(loop_kind: str) -> Iterator[ProxyServerHandle]:
    handle = start_background(loop=loop_kind)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def api(server: ProxyServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    srv = EchoServer()
    try:
        yield srv
    finally:
        srv.close()

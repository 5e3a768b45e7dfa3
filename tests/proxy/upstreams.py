"""The upstream fixtures of the proxy and toxiproxy-driver tests: a TCP echo server and a
plain HTTP/1.1 server on 127.0.0.1, closed after the test. Import them by name (pytest
finds fixtures in the importing module)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from proxy.httphelp import PlainServer
from proxy.proxyhelp import EchoServer


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with contextlib.closing(EchoServer()) as srv:
        yield srv


@pytest.fixture
def web() -> Iterator[PlainServer]:
    """A plain HTTP/1.1 upstream (httphelp.Handler)."""
    with contextlib.closing(PlainServer()) as srv:
        yield srv
